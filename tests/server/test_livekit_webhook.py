"""An agent that dies mid-call, as LiveKit reports it: ``POST /webhooks/livekit``.

A call runs through the server (TeXML, the workflow, the voice bus on Redis)
with a simulated agent whose participant identity is ``agent-AJ_...``, as a
LiveKit job's is. The agent stops without a word (a process that dies), and
LiveKit's ``participant_left`` webhook, signed as LiveKit signs it
(tests/server/livekit_webhooks.py), reaches the server, which says
``call:agent_left`` on the call's bus. Then a new agent joins and the call
resumes where it was, or none does and after 10 s (flow time) the call ends
with the apology, failed. Forged, unsigned and off-topic webhooks publish nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path
from typing import Any

import aiohttp
from livekit.protocol import models

from engine.runtime.workflow import APOLOGY
from engine.server.settings import ServerSettings
from engine.server.telnyx import call_id_for
from engine.voice.bus import START, VoiceBus
from engine.voice.clock import ScaledClock
from engine.voice.messages import AgentJoined, AgentLeft, Command, Event, Speak
from engine.voice.redis_bus import RedisVoiceBus
from engine.voice.simulated_agent import Say, SimulatedAgent
from tests.server.livekit_webhooks import SIP, LiveKitSigner, participant_left
from tests.server.support import (
    API_TOKEN,
    INTERNAL_TOKEN,
    SIP_HOST,
    Harness,
    call_event,
    harness,
    telnyx_call_id,
    texml_form,
)
from tests.waiting import wait_until

# Flow time runs 10x as fast: the 10 s wait for a new agent takes 1 s.
CLOCK = ScaledClock(0.1)
ASK = "What is your name?"
SIGNER = LiveKitSigner()
SETTINGS = ServerSettings(
    sip_host=SIP_HOST,
    api_token=API_TOKEN,
    internal_token=INTERNAL_TOKEN,
    livekit_api_key=SIGNER.api_key,
    livekit_api_secret=SIGNER.api_secret,
)


async def _post(h: Harness, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    sent = SIGNER.headers(body) if headers is None else headers
    async with h.http.post(f"{h.url}/webhooks/livekit", data=body, headers=sent) as response:
        return response.status, await response.json()


async def _events(redis_url: str, call_id: str) -> list[Event]:
    return await _read_all(redis_url, call_id, "events")  # type: ignore[return-value]


async def _commands(redis_url: str, call_id: str) -> list[Command]:
    return await _read_all(redis_url, call_id, "commands")  # type: ignore[return-value]


async def _read_all(redis_url: str, call_id: str, stream: str) -> list[Command | Event]:
    """Everything on one of the call's streams so far, read by a bus of our own."""
    bus = RedisVoiceBus.from_url(redis_url)
    read = bus.read_events if stream == "events" else bus.read_commands
    found: list[Command | Event] = []
    after = START
    try:
        while batch := await read(call_id, after, 0):  # type: ignore[operator]
            after = batch[-1][0]
            found.extend(message for _, message in batch if message is not None)
    finally:
        await bus.close()
    return found


async def _call_with_dying_agent(h: Harness, bus: VoiceBus) -> tuple[str, SimulatedAgent]:
    """A call in its question 'What is your name?', whose agent then dies without a word."""
    telnyx_id = telnyx_call_id()
    call_id = call_id_for(telnyx_id)
    status, _ = await h.texml(texml_form(telnyx_id))
    assert status == 200
    first = SimulatedAgent(bus, call_id, [], clock=CLOCK, agent_id="agent-AJ_first")
    first.start()
    await wait_until(
        lambda: any(isinstance(c, Speak) and c.text == ASK for c in first.commands), what="the question"
    )
    await first.stop(announce=False)  # killed: no call:agent_left from it
    return call_id, first


def test_a_new_agent_resumes_the_call_after_livekit_says_the_old_one_left(
    temporal_settings: Any, redis_url: str, tmp_path: Path
) -> None:
    async def scenario() -> None:
        bus = RedisVoiceBus.from_url(redis_url)
        async with harness(
            temporal_settings,
            tmp_path,
            redis_url=redis_url,
            voice_bus=bus,
            voice_clock=CLOCK,
            settings=SETTINGS,
        ) as h:
            call_id, first = await _call_with_dying_agent(h, bus)
            status, answer = await _post(h, participant_left(f"call-{call_id}", "agent-AJ_first"))
            assert status == 200 and answer["status"] == "agent left", answer
            left = [e for e in await _events(redis_url, call_id) if isinstance(e, AgentLeft)]
            assert len(left) == 1 and "agent-AJ_first" in left[0].reason

            # LiveKit dispatches the call to another agent, which joins the room.
            second = SimulatedAgent(bus, call_id, [Say("Ada")], clock=CLOCK, agent_id="agent-AJ_second")
            second.start()
            record = await h.wait_for_call(call_id, ("completed", "failed"), timeout=30)
            assert record["status"] == "completed", record["reason"]
            assert record["node_path"] == ["hello", "prepare", "ask", "bye"]
            assert record["variables"]["answer"]["transcript"] == "Ada"
            # The question was asked again, to the new agent only; then the call went on.
            assert [c.text for c in first.commands if isinstance(c, Speak)] == [
                "Hello! Thanks for calling.",
                ASK,
            ]
            kinds = [type(c).__name__ for c in second.commands]
            assert kinds[:2] == ["Listen", "Speak"], kinds
            assert second.commands[1].text == ASK  # type: ignore[union-attr]
            assert [c.text for c in second.commands if isinstance(c, Speak)][-1] == "Goodbye Ada!"
            events = await _events(redis_url, call_id)
            joined = [
                i
                for i, e in enumerate(events)
                if isinstance(e, AgentJoined) and e.agent_id == "agent-AJ_second"
            ]
            assert joined and events.index(left[0]) < joined[0], events
            # The old agent leaving again (LiveKit retries), now that another serves the
            # call, changes nothing.
            status, answer = await _post(h, participant_left(f"call-{call_id}", "agent-AJ_first"))
            assert status == 200 and answer["status"].startswith("ignored"), answer
            await second.stop(announce=False)
        await bus.close()

    asyncio.run(scenario())


def test_with_no_new_agent_within_10_s_the_call_fails_with_the_apology(
    temporal_settings: Any, redis_url: str, tmp_path: Path
) -> None:
    async def scenario() -> None:
        bus = RedisVoiceBus.from_url(redis_url)
        async with harness(
            temporal_settings,
            tmp_path,
            redis_url=redis_url,
            voice_bus=bus,
            voice_clock=CLOCK,
            settings=SETTINGS,
        ) as h:
            call_id, _ = await _call_with_dying_agent(h, bus)
            status, answer = await _post(
                h,
                participant_left(
                    f"call-{call_id}", "agent-AJ_first", reason=models.DisconnectReason.CONNECTION_TIMEOUT
                ),
            )
            assert status == 200 and answer["status"] == "agent left", answer
            told = time.monotonic()

            async def apology_sent() -> float | None:
                commands = await _commands(redis_url, call_id)
                sent = any(isinstance(c, Speak) and c.text == APOLOGY for c in commands)
                return time.monotonic() if sent else None

            apology = await wait_until(apology_sent, interval=0.01, what="the apology")
            # Not before 10 s of flow time (seen when sent, or later: a lower bound holds).
            assert apology - told >= 10 * CLOCK.scale * 0.95
            record = await h.wait_for_call(call_id, "failed", timeout=30)
            assert "no other agent joined within 10 seconds" in record["reason"], record
            detail = await h.api(f"/api/calls/{call_id}")
            said = [t["text"] for t in detail["transcript"] if t["speaker"] == "agent"]
            # The apology was sent, but no agent was there to say it: it is not shown as said.
            assert APOLOGY not in said, said
            # The question had been sent once: nobody was there to ask it again.
            asks = [c for c in await _commands(redis_url, call_id) if isinstance(c, Speak) and c.text == ASK]
            assert len(asks) == 1
        await bus.close()

    asyncio.run(scenario())


def test_forged_unsigned_and_other_webhooks_publish_nothing(
    temporal_settings: Any, redis_url: str, tmp_path: Path
) -> None:
    async def scenario() -> None:
        bus = RedisVoiceBus.from_url(redis_url)
        slow = ScaledClock(5.0)  # flow time at a fifth of real time: the call lasts
        async with harness(
            temporal_settings,
            tmp_path,
            redis_url=redis_url,
            voice_bus=bus,
            voice_clock=slow,
            settings=SETTINGS,
        ) as h:
            telnyx_id = telnyx_call_id()
            call_id = call_id_for(telnyx_id)
            assert (await h.texml(texml_form(telnyx_id)))[0] == 200
            agent = SimulatedAgent(bus, call_id, [], clock=slow, agent_id="agent-AJ_live")
            agent.start()
            await h.wait_at_node(call_id, "ask")  # the call waits for the caller's answer
            room = f"call-{call_id}"
            body = participant_left(room, "agent-AJ_live")

            refusals = [
                (body, {}, 401, "unsigned"),
                (
                    body,
                    LiveKitSigner(api_secret="another-secret-of-32-characters-long").headers(body),
                    401,
                    "forged",
                ),
                (body, LiveKitSigner(api_key="someone-else").headers(body), 401, "forged"),
                (body, SIGNER.headers(body, valid_for=dt.timedelta(minutes=-5)), 401, "forged"),
                (body.replace(b"agent-AJ_live", b"agent-AJ_evil"), SIGNER.headers(body), 401, "forged"),
                (body, {"Authorization": "not a token"}, 401, "forged"),
                (b"not json", SIGNER.headers(b"not json"), 400, "malformed"),
            ]
            for sent, headers, wanted, reason in refusals:
                status, answer = await _post(h, sent, headers)
                assert (status, answer.get("reason")) == (wanted, reason), answer
                assert answer["error"]

            ignored = [
                participant_left(room, "agent-AJ_live", event="participant_joined"),
                participant_left(room, "sip_+15557654321", kind=SIP, agent_name=None),
                participant_left(room, "agent-AJ_live", agent_name="another-agent"),
                participant_left("lobby", "agent-AJ_live"),
                participant_left("call-no-such-call", "agent-AJ_live"),
                participant_left(room, "agent-AJ_stale"),  # not the agent serving the call
                participant_left(room, "agent-AJ_live", reason=models.DisconnectReason.ROOM_DELETED),
            ]
            for sent in ignored:
                status, answer = await _post(h, sent, None)
                assert status == 200 and answer["status"].startswith("ignored"), answer
            assert not any(isinstance(e, AgentLeft) for e in await _events(redis_url, call_id))
            record = await h.ctx.records.get_call(call_id)
            assert record["status"] == "active"  # the call goes on

            # The real thing is heard once, however often LiveKit delivers it.
            status, answer = await _post(h, body, None)
            assert status == 200 and answer["status"] == "agent left", answer
            status, answer = await _post(h, body, None)  # the same event, signed again
            assert status == 200 and answer["status"] == "duplicate", answer
            left = [e for e in await _events(redis_url, call_id) if isinstance(e, AgentLeft)]
            assert len(left) == 1

            await agent.stop(announce=False)
            assert (await h.post_event(call_event("call.hangup", telnyx_id))).status == 200
            # The caller hung up while the call waited for a new agent (10 s of flow time,
            # 50 s here): the hangup ends the call at once, as the caller's.
            record = await h.wait_for_end(call_id, timeout=30)
            assert (record["status"], record["reason"]) == (
                "user_hangup",
                "the caller hung up (at the node 'ask')",
            )
            metrics = await h.api("/metrics", token=None)
            for reason in ("unsigned", "forged", "malformed"):
                assert f'voxflow_errors_total{{kind="livekit_webhook_{reason}"}}' in metrics
        await bus.close()

    asyncio.run(scenario())


def test_without_livekit_keys_or_a_voice_bus_the_server_says_what_to_set(
    temporal_settings: Any, tmp_path: Path
) -> None:
    async def scenario() -> None:
        body = participant_left("call-abc", "agent-AJ_x")
        async with harness(temporal_settings, tmp_path / "no-keys", run_worker=False) as h:
            async with h.http.post(
                f"{h.url}/webhooks/livekit", data=body, headers=SIGNER.headers(body)
            ) as response:
                assert response.status == 503
                message = (await response.json())["error"]
        assert "LIVEKIT_API_KEY" in message and "LIVEKIT_API_SECRET" in message
        async with harness(temporal_settings, tmp_path / "no-bus", settings=SETTINGS, run_worker=False) as h:
            async with (
                aiohttp.ClientSession() as http,
                http.post(f"{h.url}/webhooks/livekit", data=body, headers=SIGNER.headers(body)) as response,
            ):
                assert response.status == 503
                assert "VOXFLOW_REDIS_URL" in (await response.json())["error"]

    asyncio.run(scenario())
