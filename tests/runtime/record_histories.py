"""Record the saved histories that test_replay.py replays.

Run ``python -m tests.runtime.record_histories`` after a deliberate change to
CallFlowWorkflow's commands (and say so in the change: calls already running
on the old code would break on the new one; give the change a
``workflow.patched`` guard instead if they must go on). It starts the embedded
dev server, a worker and the local web server, runs each example call, and
writes its history to ``tests/runtime/histories/<name>.json``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from temporalio.client import Client, WorkflowHandle

from engine.language.project import compile_paths
from engine.runtime import messages as m
from engine.runtime.calls import call_state, hang_up, send_signal, start_call
from engine.runtime.config import RuntimeConfig
from engine.runtime.services import RuntimeServices
from engine.runtime.temporal_server import EmbeddedTemporal, connect_client
from engine.runtime.worker import WorkerOptions, create_worker
from tests.runtime.webapp import WebState, start_web
from tests.waiting import wait_until

HERE = Path(__file__).parent
HISTORIES = HERE / "histories"

Scenario = Callable[[Client, str], Awaitable[WorkflowHandle]]  # type: ignore[type-arg]


async def record() -> list[Path]:
    state = WebState()
    runner, url = await start_web(state)
    import tempfile

    from tests.runtime.conftest import flows_calling

    flows = compile_paths([flows_calling(url, Path(tempfile.mkdtemp()) / "flows")]).flows
    queue = f"record-{uuid.uuid4().hex[:6]}"
    written: list[Path] = []
    async with EmbeddedTemporal() as server:
        client = await connect_client(server.settings())
        services = RuntimeServices(RuntimeConfig())
        worker = create_worker(client, services, WorkerOptions(task_queue=queue, heartbeat_throttle=0.3))

        async def start(flow: str, call_id: str, **kwargs: object) -> WorkflowHandle:  # type: ignore[type-arg]
            return await start_call(client, flows[flow], call_id, task_queue=queue, **kwargs)  # type: ignore[arg-type]

        async def basics(call_id: str) -> WorkflowHandle:  # type: ignore[type-arg]
            return await start(
                "basics", call_id, variables={"base_url": url, "caller_name": "ada", "amount": 3}
            )

        async def retry_then_on_error(call_id: str) -> WorkflowHandle:  # type: ignore[type-arg]
            return await start("retry", call_id, variables={"base_url": url, "key": call_id, "fail": 10})

        async def signal_resumes_wait(call_id: str) -> WorkflowHandle:  # type: ignore[type-arg]
            handle = await start("long_wait", call_id)
            await wait_until(lambda: _waiting_for(client, call_id, "go"), what="the call to wait for 'go'")
            await send_signal(client, call_id, "go", {"by": "sam"})
            return handle

        async def hangup_cancels_node(call_id: str) -> WorkflowHandle:  # type: ignore[type-arg]
            handle = await start("long", call_id, variables={"base_url": url, "key": call_id, "seconds": 30})
            await wait_until(lambda: state.started_event(call_id).is_set(), what="the long request")
            await hang_up(client, call_id)
            return handle

        async def subflow(call_id: str) -> WorkflowHandle:  # type: ignore[type-arg]
            return await start("parent", call_id, variables={"x": 4})

        async def continue_as_new(call_id: str) -> WorkflowHandle:  # type: ignore[type-arg]
            return await start(
                "many_steps",
                call_id,
                variables={"base_url": url, "rounds": 4},
                options=m.CallOptions(history_event_limit=30),
            )

        scenarios = {
            "basics": basics,
            "retry_then_on_error": retry_then_on_error,
            "signal_resumes_wait": signal_resumes_wait,
            "hangup_cancels_node": hangup_cancels_node,
            "subflow": subflow,
            "continue_as_new": continue_as_new,
        }
        async with worker:
            for name, scenario in scenarios.items():
                call_id = f"{name}-{uuid.uuid4().hex[:6]}"
                handle = await scenario(call_id)
                await handle.result()
                # The first run: for continue_as_new it ends in ContinuedAsNew.
                first = client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id)
                history = await first.fetch_history()
                path = HISTORIES / f"{name}.json"
                path.write_text(history.to_json(), encoding="utf-8")
                written.append(path)
        await services.close()
    await runner.cleanup()
    return written


def main() -> None:
    HISTORIES.mkdir(exist_ok=True)
    for path in asyncio.run(record()):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()


async def _waiting_for(client: Client, call_id: str, name: str) -> bool:
    return bool((await call_state(client, call_id)).waiting_for == name)
