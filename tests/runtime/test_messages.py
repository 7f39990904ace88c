"""Signals and the query: wait_for_signal, hangup during a long node, the state query."""

from __future__ import annotations

import asyncio
import time

from temporalio.api.enums.v1 import EventType

from engine.runtime import messages as m
from engine.runtime.calls import call_state, hang_up, send_signal, send_voice_event, start_call
from tests.runtime.conftest import RuntimeEnv, client_for, new_call_id
from tests.waiting import wait_until


def test_wait_for_signal_resumed_by_its_signal(runtime_env: RuntimeEnv, flows) -> None:
    async def scenario() -> tuple[m.CallSnapshot, m.CallResult]:
        client = await client_for(runtime_env)
        call_id = new_call_id()
        options = m.CallOptions()
        handle = await start_call(
            client, flows["long_wait"], call_id, options=options, task_queue=runtime_env.task_queue
        )
        snapshot = await wait_until(lambda: _waiting(client, call_id, "go"), what="the call to wait for 'go'")
        await send_signal(client, call_id, "go", {"approved_by": "sam", "amount": 42})
        return snapshot, await handle.result()

    snapshot, result = asyncio.run(scenario())
    assert snapshot.status == m.RUNNING
    assert snapshot.current_node == "approval"
    assert snapshot.path == ["prepare", "approval"]
    assert snapshot.variables["asked"] is True
    assert result.status == m.COMPLETED
    assert result.path == ["prepare", "approval", "done"]


def test_wait_for_signal_by_its_own_name_and_saved(runtime_env: RuntimeEnv, flows) -> None:
    # Any signal name reaches the call, e.g. from the Temporal CLI:
    #   temporal workflow signal --workflow-id call-<id> --name supervisor_approved --input '{...}'
    async def scenario() -> m.CallResult:
        client = await client_for(runtime_env)
        call_id = new_call_id()
        handle = await start_call(client, flows["wait"], call_id, task_queue=runtime_env.task_queue)
        # Sent before the node waits: it is kept until the node asks for it.
        await handle.signal("supervisor_approved", {"by": "dana"})
        return await handle.result()

    result = asyncio.run(scenario())
    assert (result.status, result.reason) == (m.COMPLETED, "approved")
    assert result.variables["approval"] == {"by": "dana"}


def test_wait_for_signal_times_out(runtime_env: RuntimeEnv, flows) -> None:
    async def scenario() -> tuple[m.CallResult, float]:
        client = await client_for(runtime_env)
        began = time.monotonic()
        handle = await start_call(client, flows["wait"], new_call_id(), task_queue=runtime_env.task_queue)
        await handle.signal("some_other_signal", {"ignored": True})
        return await handle.result(), time.monotonic() - began

    result, took = asyncio.run(scenario())
    assert (result.status, result.reason) == (m.FAILED, "nobody approved in time")
    assert result.path == ["prepare", "approval", "too_late"]
    assert "approval" not in result.variables
    assert took >= 1.0  # the node's 1 s timeout


def test_hangup_during_a_long_node_cancels_it(runtime_env: RuntimeEnv, flows) -> None:
    key = new_call_id("hang")
    state = runtime_env.web.state

    async def scenario() -> tuple[m.CallResult, float, list[int]]:
        client = await client_for(runtime_env)
        call_id = new_call_id()
        handle = await start_call(
            client,
            flows["long"],
            call_id,
            variables={
                "base_url": runtime_env.web.url,
                "key": key,
                "seconds": 30,
            },
            task_queue=runtime_env.task_queue,
        )
        await wait_until(lambda: state.started_event(key).is_set(), what="the long request")
        await send_voice_event(client, call_id, m.VoiceEvent("transcript", "goodbye", 0.9))
        began = time.monotonic()
        await hang_up(client, call_id, "the caller hung up")
        result = await handle.result()
        took = time.monotonic() - began
        history = await handle.fetch_history()
        return result, took, [event.event_type for event in history.events]

    result, took, events = asyncio.run(scenario())
    assert result.status == m.USER_HANGUP
    assert result.reason == "the caller hung up (at the node 'long_call')"
    assert result.path == ["before", "first_call", "long_call"]
    assert result.variables["before_done"] is True and "long" not in result.variables
    assert took < 10  # not the 30 s the node would have taken
    # The activity itself was cancelled (heartbeat → cancellation), not abandoned.
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED in events
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED in events
    assert state.count(state.finished, key) == 0


def test_query_reports_transcript_events(runtime_env: RuntimeEnv, flows) -> None:
    async def scenario() -> m.CallSnapshot:
        client = await client_for(runtime_env)
        call_id = new_call_id()
        handle = await start_call(client, flows["long_wait"], call_id, task_queue=runtime_env.task_queue)
        await send_voice_event(client, call_id, m.VoiceEvent("dtmf", "1"))
        await send_voice_event(client, call_id, m.VoiceEvent("transcript", "my balance", 0.87))
        snapshot = await wait_until(lambda: _transcribed(client, call_id, 2), what="transcript")
        await hang_up(client, call_id)
        assert (await handle.result()).status == m.USER_HANGUP
        return snapshot

    snapshot = asyncio.run(scenario())
    assert [(t.kind, t.text, t.confidence) for t in snapshot.transcript] == [
        ("dtmf", "1", None),
        ("transcript", "my balance", 0.87),
    ]
    assert snapshot.waiting_for == "go"


async def _waiting(client, call_id: str, name: str) -> m.CallSnapshot | None:
    snapshot = await call_state(client, call_id)
    return snapshot if snapshot.waiting_for == name else None


async def _transcribed(client, call_id: str, count: int) -> m.CallSnapshot | None:
    snapshot = await call_state(client, call_id)
    return snapshot if len(snapshot.transcript) >= count else None
