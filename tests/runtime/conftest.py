"""Fixtures for the runtime tests: one worker, one web server, compiled test flows.

The worker and the local web server run for the whole session on a background
thread with its own event loop, so each test only connects a client (a few
milliseconds) inside its own ``asyncio.run``. The worker polls a task queue of
its own, so these tests never meet another worker on the same dev server.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from engine.language.compile import FlowGraph
from engine.language.project import compile_paths
from engine.runtime.config import RuntimeConfig
from engine.runtime.service_types import LlmSettings
from engine.runtime.services import RuntimeServices
from engine.runtime.temporal_server import TemporalSettings, connect_client
from engine.runtime.worker import WorkerOptions
from tests.background_loop import BackgroundLoop
from tests.runtime.webapp import LLM_KEY, WebState, start_web

FLOWS_DIR = Path(__file__).parent / "flows"


@dataclass
class Web:
    url: str
    state: WebState


@dataclass
class RuntimeEnv:
    """What a test needs to run calls on the session's worker."""

    settings: TemporalSettings
    task_queue: str
    web: Web
    database: Path


@pytest.fixture(scope="session")
def background() -> Iterator[BackgroundLoop]:
    loop = BackgroundLoop()
    yield loop
    loop.close()


@pytest.fixture(scope="session")
def web(background: BackgroundLoop) -> Iterator[Web]:
    state = WebState()
    runner, url = background.run(start_web(state))
    yield Web(url, state)
    background.run(runner.cleanup())


# The test flows call http://web.test/...; a flow's host is written out, never taken from a
# variable, so the flows are compiled with it replaced by the session's local web server.
WEB_HOST = "http://web.test"


def flows_calling(url: str, folder: Path) -> Path:
    """A copy of the test flows whose addresses point at ``url``."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in FLOWS_DIR.glob("*.yaml"):
        text = path.read_text(encoding="utf-8").replace(WEB_HOST, url)
        (folder / path.name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def flows(web: Web, tmp_path_factory: pytest.TempPathFactory) -> dict[str, FlowGraph]:
    return compile_paths([flows_calling(web.url, tmp_path_factory.mktemp("flows"))]).flows


@pytest.fixture(scope="session")
def runtime_env(
    background: BackgroundLoop,
    web: Web,
    temporal_settings: TemporalSettings,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RuntimeEnv]:
    database = tmp_path_factory.mktemp("db") / "test.db"
    config = RuntimeConfig(
        databases={"testdb": f"sqlite:///{database}"},
        llm=LlmSettings(base_url=f"{web.url}/v1", model="test-model", api_key=LLM_KEY),
    )
    task_queue = f"voxflow-test-{uuid.uuid4().hex[:8]}"
    options = WorkerOptions(task_queue=task_queue, heartbeat_throttle=0.3, graceful_shutdown=1)
    with background.running_worker(temporal_settings, RuntimeServices(config), options):
        yield RuntimeEnv(temporal_settings, task_queue, web, database)


async def client_for(env: RuntimeEnv) -> Client:
    return await connect_client(env.settings)


def new_call_id(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def run_call(
    env: RuntimeEnv,
    graph: FlowGraph,
    variables: dict[str, Any] | None = None,
    options: Any = None,
    call_id: str | None = None,
) -> Any:
    """Start one call on the session's worker and wait for its CallResult."""
    from engine.runtime.calls import start_call

    async def go() -> Any:
        client = await client_for(env)
        handle = await start_call(
            client,
            graph,
            call_id or new_call_id(),
            variables=variables,
            options=options,
            task_queue=env.task_queue,
        )
        return await asyncio.wait_for(handle.result(), 60)

    return asyncio.run(go())
