"""A whole call through the server, as Telnyx and LiveKit would drive it.

call.initiated (signed like Telnyx) → the TeXML answer bridging to LiveKit SIP →
the simulated agent on the voice bus (Redis) plays the caller → call.hangup;
then the call record, the live event streams (SSE, through Redis pub/sub) and
the workflow itself are checked. Then: the caller hanging up mid-call, and
forged, stale, replayed and malformed webhooks, which change nothing.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from engine.runtime.messages import CallResult, workflow_id
from engine.server.telnyx import call_id_for
from engine.voice.clock import ScaledClock
from engine.voice.redis_bus import RedisVoiceBus
from engine.voice.simulated_agent import Say, SimulatedAgent
from tests.server.support import (
    API_TOKEN,
    SIP_HOST,
    TelnyxSigner,
    call_event,
    harness,
    read_sse,
    telnyx_call_id,
    texml_form,
)
from tests.waiting import wait_until

CLOCK = ScaledClock(0.05)


def test_a_whole_call(temporal_settings: Any, redis_url: str, tmp_path: Path) -> None:
    asyncio.run(_whole_call(temporal_settings, redis_url, tmp_path))


async def _whole_call(temporal_settings: Any, redis_url: str, tmp_path: Path) -> None:
    bus = RedisVoiceBus.from_url(redis_url)
    async with harness(
        temporal_settings, tmp_path, redis_url=redis_url, voice_bus=bus, voice_clock=CLOCK
    ) as h:
        telnyx_id = telnyx_call_id()
        call_id = call_id_for(telnyx_id)
        call_events: list[dict[str, Any]] = []
        flow_events: list[dict[str, Any]] = []
        ready = [asyncio.Event(), asyncio.Event()]
        readers = [
            asyncio.create_task(
                read_sse(
                    h.http, f"{h.url}/api/calls/{call_id}/events?token={API_TOKEN}", call_events, ready[0]
                )
            ),
            asyncio.create_task(
                read_sse(
                    h.http, f"{h.url}/api/flows/greeting/events?token={API_TOKEN}", flow_events, ready[1]
                )
            ),
        ]
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in ready)), 5)

        fetch = texml_form(telnyx_id)
        status, xml = await h.texml(fetch)
        assert status == 200
        assert f"<Response><Dial><Sip>sip:call-{call_id}@{SIP_HOST}</Sip></Dial></Response>" in xml
        # Telnyx asks again (its retry, signed again a few seconds later, so not a replay
        # of the same request): the same answer, and the call is not started again.
        again = await h.texml(fetch, h.signer.headers(fetch, int(time.time()) - 5))
        assert again == (200, xml)
        # Its progress callbacks update the call; none of them is a new call.
        for progress in ("initiated", "ringing", "in-progress"):
            status, xml = await h.texml(
                texml_form(telnyx_id, status=progress, CallbackSource="call-progress-events")
            )
            assert (status, xml.strip().endswith("<Response/>")) == (200, True)

        agent = SimulatedAgent(bus, call_id, [Say("Ada")], clock=CLOCK, reaction=0.2)
        agent.start()
        client = h.ctx.temporal_client()
        result: CallResult = await asyncio.wait_for(
            client.get_workflow_handle(workflow_id(call_id), result_type=CallResult).result(), 30
        )
        assert result.status == "completed", result.reason
        # LiveKit hangs up the SIP leg; Telnyx tells us the call is over.
        status, _ = await h.texml(
            texml_form(
                telnyx_id,
                status="completed",
                CallbackSource="call-progress-events",
                HangupCause="normal_clearing",
            )
        )
        assert status == 200

        record = await h.wait_for_call(call_id, "completed")
        graph = h.ctx.library.flow("greeting")
        assert graph is not None
        assert record["flow_id"] == "greeting" and record["flow_version"] == graph.version
        assert record["caller"] == "+15557654321" and record["called"] == "+15550001000"
        assert record["telnyx_call_id"] == telnyx_id
        assert record["node_path"] == ["hello", "prepare", "ask", "bye"]
        assert record["variables"]["answer"]["transcript"] == "Ada"
        assert record["variables"]["asked"] is True
        assert record["duration"] > 0 and record["ended_at"] >= record["answered_at"]

        detail = await h.api(f"/api/calls/{call_id}")
        turns = [(t["speaker"], t["text"]) for t in detail["transcript"]]
        assert turns == [
            ("agent", "Hello! Thanks for calling."),
            ("agent", "What is your name?"),
            ("caller", "Ada"),
            ("agent", "Goodbye Ada!"),
        ]

        await wait_until(lambda: _ended(call_events) and _ended(flow_events), what="call:ended")
        for reader in readers:
            reader.cancel()
        types = [e["type"] for e in call_events]
        assert types[0] == "call:incoming" and types[1] == "call:active"
        assert types.count("call:incoming") == 1  # the duplicate delivery changed nothing
        assert types[-1] == "call:ended"
        assert call_events[-1]["data"]["status"] == "completed"
        nodes = [e["data"]["node_id"] for e in call_events if e["type"] == "call:node_change"]
        assert nodes == ["hello", "ask", "bye"]  # `prepare` is walked on the way to `ask`
        walked = [e["data"]["walked"] for e in call_events if e["type"] == "call:node_change"]
        assert walked[1] == ["prepare", "ask"]
        transcript = [e["data"] for e in call_events if e["type"] == "call:transcript"]
        assert {"speaker": "caller", "text": "Ada", "is_final": True}.items() <= {
            k: v for t in transcript if t["speaker"] == "caller" and t["is_final"] for k, v in t.items()
        }.items()
        assert any(not t["is_final"] for t in transcript)  # interim words came too
        updated = {e["data"]["name"] for e in call_events if e["type"] == "call:variable_updated"}
        assert {"asked", "answer"} <= updated
        assert [e["type"] for e in flow_events] == types  # one call: the flow saw the same
        await bus.close()


def test_caller_hangs_up_mid_call(temporal_settings: Any, redis_url: str, tmp_path: Path) -> None:
    async def scenario() -> None:
        bus = RedisVoiceBus.from_url(redis_url)
        async with harness(temporal_settings, tmp_path, voice_bus=bus, voice_clock=CLOCK) as h:
            telnyx_id = telnyx_call_id()
            call_id = call_id_for(telnyx_id)
            status, _ = await h.texml(texml_form(telnyx_id))
            assert status == 200
            agent = SimulatedAgent(bus, call_id, [], clock=CLOCK)  # a caller who says nothing
            agent.start()
            await h.wait_at_node(call_id, "ask")
            response = await h.post_event(
                call_event("call.hangup", telnyx_id, hangup_cause="normal_clearing")
            )
            assert response.status == 200
            record = await h.wait_for_call(call_id, "user_hangup")
            assert "hung up" in record["reason"]
            await agent.stop(announce=False)
            await bus.close()

    asyncio.run(scenario())


def test_forged_stale_replayed_and_malformed_webhooks_change_nothing(
    temporal_settings: Any, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with harness(temporal_settings, tmp_path) as h:
            events: list[dict[str, Any]] = []
            ready = asyncio.Event()
            reader = asyncio.create_task(
                read_sse(h.http, f"{h.url}/api/events?token={API_TOKEN}", events, ready)
            )
            await asyncio.wait_for(ready.wait(), 5)

            forged_id = telnyx_call_id()
            body = call_event("call.initiated", forged_id)
            forged = await h.post_event(body, TelnyxSigner().headers(body))  # another key
            assert forged.status == 401
            tampered = h.signer.headers(body)
            forged = await h.post_event(body.replace(b"+15557654321", b"+15550000000"), tampered)
            assert forged.status == 401
            unsigned = await h.post_event(body, {})
            assert unsigned.status == 401
            stale_id = telnyx_call_id()
            stale_body = call_event("call.initiated", stale_id)
            import time

            stale = await h.post_event(stale_body, h.signer.headers(stale_body, int(time.time()) - 301))
            assert stale.status == 401
            status, _ = await h.texml(
                texml_form(stale_id), h.signer.headers(texml_form(stale_id), int(time.time()) + 400)
            )
            assert status == 401

            replay_id = telnyx_call_id()
            replay_body = call_event("call.answered", replay_id, called="+15550002000")
            headers = h.signer.headers(replay_body)
            first = await h.post_event(replay_body, headers)
            assert first.status == 200
            replayed = await h.post_event(replay_body, headers)
            assert replayed.status == 409
            texml_body = texml_form(replay_id, called="+15550002000")
            texml_headers = h.signer.headers(texml_body)
            assert (await h.texml(texml_body, texml_headers))[0] == 200
            assert (await h.texml(texml_body, texml_headers))[0] == 409

            for bad in (
                b"not json",
                b"[]",
                b'{"data": {"event_type": "call.hangup"}}',
                b'{"data": {"id": "x", "event_type": "call.hangup", "payload": {}}}',
            ):
                response = await h.post_event(bad)
                assert response.status == 400
            async with h.http.post(
                f"{h.url}/webhooks/telnyx/texml", data=b"From=%2B1", headers=h.signer.headers(b"From=%2B1")
            ) as response:
                assert response.status == 400
                assert "CallSid" in (await response.json())["error"]

            calls = (await h.api("/api/calls"))["calls"]
            assert [c["call_id"] for c in calls] == [call_id_for(replay_id)]
            for refused in (forged_id, stale_id):
                assert await h.ctx.records.get_call(call_id_for(refused)) is None
            client = h.ctx.temporal_client()
            # Temporal's list of workflows lags behind their start (visibility is eventually
            # consistent): wait until it shows the started one, then check it is the only one.
            query = f"TaskQueue = '{h.ctx.settings.task_queue}'"

            async def listed() -> list[Any]:
                return [w async for w in client.list_workflows(query)]

            workflows = await wait_until(listed, interval=0.2, what="the workflow in Temporal's list")
            assert [w.id for w in workflows] == [workflow_id(call_id_for(replay_id))]
            await client.get_workflow_handle(workflow_id(call_id_for(replay_id))).signal("release")
            await h.wait_for_call(call_id_for(replay_id), "completed")
            # Every event of the call has come through the stream once its end has.
            await wait_until(lambda: _ended(events), what="call:ended")
            reader.cancel()
            incoming = [e for e in events if e["type"] == "call:incoming"]
            assert [e["call_id"] for e in incoming] == [call_id_for(replay_id)]
            metrics = await h.api("/metrics", token=None)
            for reason in ("forged", "stale", "unsigned", "replayed", "malformed"):
                assert f'voxflow_errors_total{{kind="webhook_{reason}"}}' in metrics

    asyncio.run(scenario())


def _ended(events: list[dict[str, Any]]) -> bool:
    return any(e["type"] == "call:ended" for e in events)
