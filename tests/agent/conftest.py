"""The real engine for the agent tests: a Temporal worker, a memory voice bus, SQLite, an LLM.

The worker runs for the whole session on a background thread with its own
event loop (as in tests/runtime), so the audio of a harnessed call, paced in
real time on the test's loop, never waits behind a workflow task. Both sides
share one in-memory voice bus (it wakes readers on their own loops). The
``accounts`` database is SQLite, named through VOXFLOW_DATABASE_ACCOUNTS as a
deployment would; the llm node talks to tests/runtime/webapp.py's local
OpenAI-style endpoint.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.agent import smart_turn, turn_model_file
from engine.agent.smart_turn import SmartTurn
from engine.language.compile import FlowGraph
from engine.language.project import compile_paths
from engine.runtime.config import load_runtime_config
from engine.runtime.services import RuntimeServices
from engine.runtime.temporal_server import TemporalSettings
from engine.runtime.worker import WorkerOptions
from engine.voice.memory_bus import MemoryVoiceBus
from tests.background_loop import BackgroundLoop
from tests.runtime.webapp import LLM_KEY, WebState, start_web

FLOWS_DIR = Path(__file__).resolve().parents[2] / "flows"
CALLER = "+15550100"
BALANCE = 42.5


@dataclass
class VoiceEngine:
    """A worker whose voice nodes talk to ``bus``; calls go on ``task_queue``."""

    settings: TemporalSettings
    task_queue: str
    bus: MemoryVoiceBus
    flows: dict[str, FlowGraph]


@pytest.fixture(scope="session")
def example_flows() -> dict[str, FlowGraph]:
    return compile_paths([FLOWS_DIR]).flows


@pytest.fixture(scope="session")
def voice_engine(
    temporal_settings: TemporalSettings,
    example_flows: dict[str, FlowGraph],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[VoiceEngine]:
    background = BackgroundLoop()
    database = tmp_path_factory.mktemp("accounts") / "accounts.db"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE accounts (phone TEXT PRIMARY KEY, balance REAL)")
        db.execute("INSERT INTO accounts VALUES (?, ?)", (CALLER, BALANCE))
    runner, url = background.run(start_web(WebState()))
    config = load_runtime_config(
        environ={
            "VOXFLOW_DATABASE_ACCOUNTS": f"sqlite:///{database}",
            "VOXFLOW_LLM_BASE_URL": f"{url}/v1",
            "VOXFLOW_LLM_API_KEY": LLM_KEY,
        }
    )
    bus = MemoryVoiceBus()
    services = RuntimeServices(config, voice_bus=bus)
    task_queue = f"voxflow-agent-{uuid.uuid4().hex[:8]}"
    options = WorkerOptions(task_queue=task_queue, heartbeat_throttle=0.3, graceful_shutdown=1)
    try:
        with background.running_worker(temporal_settings, services, options):
            yield VoiceEngine(temporal_settings, task_queue, bus, example_flows)
    finally:
        background.run(runner.cleanup())
        background.close()


def new_call_id(prefix: str = "agent") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def smart_turn_model() -> SmartTurn:
    """The Smart Turn model, fetched by ``voxflow models fetch smart-turn`` (.ci/run does;
    with CI=true a missing model fails the tests that need it instead of skipping them)."""
    path = turn_model_file.find()
    if path is None:
        message = f"the Smart Turn model is not on this machine: run '{turn_model_file.FETCH_COMMAND}'"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    return smart_turn.load(path)
