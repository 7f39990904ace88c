"""A worker killed with SIGKILL in the middle of a node; another one finishes the call."""

from __future__ import annotations

import asyncio

from temporalio.api.enums.v1 import EventType

from engine.runtime import messages as m
from engine.runtime.calls import start_call
from tests.runtime.conftest import RuntimeEnv, client_for, new_call_id
from tests.runtime.worker_process import WorkerProcess
from tests.waiting import wait_until


def test_sigkill_mid_node_then_restart_finishes_the_call(runtime_env: RuntimeEnv, flows) -> None:
    settings = runtime_env.settings
    assert settings.address is not None
    env = {"TEMPORAL_ADDRESS": settings.address, "TEMPORAL_NAMESPACE": settings.namespace}
    queue = f"crash-{new_call_id()}"
    args = ["--task-queue", queue, "--sticky-timeout", "1", "--heartbeat-throttle", "0.3"]
    key = new_call_id("crash")
    state = runtime_env.web.state
    first = WorkerProcess(args, env)
    second: WorkerProcess | None = None
    try:
        first.wait_for("voxflow worker ready")

        async def scenario() -> tuple[m.CallResult, list[int]]:
            nonlocal second
            client = await client_for(runtime_env)
            handle = await start_call(
                client,
                flows["long"],
                new_call_id(),
                # The key's first request never answers: the node is mid-flight
                # when the worker dies. Its retry answers at once.
                variables={"base_url": runtime_env.web.url, "key": key, "hang": 1},
                options=m.CallOptions(heartbeat_timeout=2.0),
                task_queue=queue,
            )
            await wait_until(lambda: state.started_event(key).is_set(), what="the long node")
            first.kill()
            second = WorkerProcess(args, env)
            second.wait_for("voxflow worker ready")
            result = await asyncio.wait_for(handle.result(), 60)
            history = await handle.fetch_history()
            return result, [
                e.activity_task_started_event_attributes.attempt
                for e in history.events
                if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
            ]

        result, attempts = asyncio.run(scenario())
        assert first.process.returncode == -9
        assert result.status == m.COMPLETED
        assert result.path == ["before", "first_call", "long_call", "after", "done"]
        variables = result.variables
        # Everything from before the crash is still there...
        assert variables["before_done"] is True
        assert variables["first"]["body"]["query"] == {"step": "first"}
        # ...the node in flight ran again, once, and the call went on after it.
        assert variables["long"]["body"]["attempt"] == 2
        assert variables["stage"] == "after"
        assert state.count(state.hits, key) == 2
        assert attempts == [1, 2]  # first_call once; long_call's attempt 2 (the first was lost)
        assert second is not None
        assert second.terminate() == 0, "".join(second.output)  # SIGTERM: a clean stop
        second.wait_for("voxflow worker stopped")
    finally:
        first.close()
        if second is not None:
            second.close()
