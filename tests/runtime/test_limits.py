"""Time limits, visit bounds and continue-as-new."""

from __future__ import annotations

import asyncio
import json

from temporalio.api.enums.v1 import EventType

from engine.runtime import messages as m
from engine.runtime.calls import start_call
from engine.runtime.workflow import LOGIC_PAUSE
from tests.runtime.conftest import RuntimeEnv, client_for, new_call_id, run_call


def test_max_call_duration_warns_then_ends_as_timeout(runtime_env: RuntimeEnv, flows) -> None:
    # long_wait.yaml has max_call_duration: 2s and waits 60 s for a signal.
    result = run_call(runtime_env, flows["long_wait"], options=m.CallOptions(warning_before=1.0))
    assert result.status == m.TIMEOUT
    assert result.reason.startswith("the call reached its maximum duration of 2 s")
    # The farewell is attempted through voice_hangup (not runnable until the voice bus).
    assert "the farewell could not be said" in result.reason
    events = {event.kind: event for event in result.events}
    assert events["time_warning"].message == "the call will reach its maximum duration in 1 s"
    assert 0.9 <= events["time_warning"].at < events["timeout"].at
    assert 1.9 <= events["timeout"].at < 5
    assert result.last_node == "approval"


def test_trigger_max_call_duration_overrides_the_flow(runtime_env: RuntimeEnv, flows) -> None:
    result = run_call(
        runtime_env,
        flows["long_wait"],
        options=m.CallOptions(
            max_call_duration=1.0,
            warning_before=60.0,
        ),
    )
    assert result.status == m.TIMEOUT
    assert result.reason.startswith("the call reached its maximum duration of 1 s")
    # A call shorter than the warning lead gets no warning.
    assert "time_warning" not in [event.kind for event in result.events]


def test_cap_on_total_execution_time(runtime_env: RuntimeEnv, flows) -> None:
    result = run_call(runtime_env, flows["wait"], options=m.CallOptions(max_execution_time=0.5))
    assert result.status == m.TIMEOUT
    assert result.reason.startswith("the call ran past voxflow's cap on total execution time (0.5 s)")


def test_loop_stopped_by_its_visit_bound(runtime_env: RuntimeEnv, flows) -> None:
    result = run_call(runtime_env, flows["loop"])
    assert result.status == m.FAILED
    assert result.reason.startswith(
        "the call was stopped at the node 'count': it came there more than 100 times "
        "(its max_visits), so the flow is probably looping."
    )
    assert result.variables["counter"] == 100  # a number stays a number
    assert result.steps == 200  # 100 × (count, again); the 101st visit is refused, not run
    assert result.path[-2:] == ["count", "again"]
    assert result.last_node == "count"


def test_long_call_continues_as_new_with_its_state(runtime_env: RuntimeEnv, flows) -> None:
    async def scenario() -> tuple[m.CallResult, list[int], int]:
        client = await client_for(runtime_env)
        handle = await start_call(
            client,
            flows["many_steps"],
            new_call_id(),
            variables={"base_url": runtime_env.web.url, "rounds": 12},
            options=m.CallOptions(history_event_limit=40),
            task_queue=runtime_env.task_queue,
        )
        result = await handle.result()
        first_run = client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id)
        history = await first_run.fetch_history()
        return result, [e.event_type for e in history.events], len(history.events)

    result, first_events, first_length = asyncio.run(scenario())
    assert result.status == m.COMPLETED
    assert result.runs >= 3
    assert first_events[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    assert first_length < 60
    assert result.variables["n"] == 12
    assert result.variables["api"]["body"]["query"] == {"n": "11"}
    assert result.steps == 12 * 3 + 1
    assert result.path == ["call_api", "bump", "again"] * 12 + ["done"]
    assert [e.kind for e in result.events].count("continued_as_new") == result.runs - 1


def test_visit_bound_holds_across_continue_as_new(runtime_env: RuntimeEnv, flows) -> None:
    result = run_call(
        runtime_env,
        flows["many_steps"],
        variables={"base_url": runtime_env.web.url, "rounds": 100},
        options=m.CallOptions(history_event_limit=40),
    )
    assert result.runs >= 3
    assert result.status == m.FAILED
    assert result.reason.startswith(
        "the call was stopped at the node 'call_api': it came there more than 15 times"
    )


def test_very_long_logic_loop_pauses_instead_of_tripping_the_deadlock_detector(
    runtime_env: RuntimeEnv, flows
) -> None:
    # 30,000 logic steps in one go could take longer than the SDK's 2 s
    # deadlock limit on a slow machine; the walk yields through a 1 ms timer
    # every LOGIC_SLICE (25,000) steps, visible as one timer in the history.
    async def scenario() -> tuple[m.CallResult, list[int], list[str]]:
        client = await client_for(runtime_env)
        handle = await start_call(
            client, flows["long_logic"], new_call_id(), task_queue=runtime_env.task_queue
        )
        result = await handle.result()
        history = await handle.fetch_history()
        timers = [
            json.loads(e.user_metadata.summary.data)
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED
        ]
        return result, [e.event_type for e in history.events], timers

    result, events, timers = asyncio.run(scenario())
    assert result.status == m.COMPLETED
    assert result.variables["counter"] == 15000
    assert result.steps == 30_001
    assert len(result.path) == 1000  # the path kept for the record is the latest part
    # One timer for the execution cap, one pause.
    assert sorted(timers) == ["execution_cap", LOGIC_PAUSE]
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in events
