"""Calls on the real LiveKit server, the real agent process and the real workflow.

A signed TeXML request → the answer dialling sip:call-<id>@… → the caller in
that room as LiveKit SIP puts it there (engine.testbed.sip_caller) → LiveKit
dispatches the voxflow agent (``voxflow agent``: engine/agent/worker.py) →
the workflow. What the caller hears is recognised from its recording with the
offline recogniser, against the grammar of what the flow could say.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from engine.testbed.sip_caller import recognise
from engine.voice.simulated_agent import AGENT_STATE_OWNER
from tests.agent.speech import speech
from tests.livekit.call_bed import call_bed

SAYINGS = (
    "welcome to the bank say balance or press two for a person",
    "say balance or press two for a person",
    "are you still there",
    "your balance is forty two dollars say balance or press two for a person",
    "your balance is forty two dollars",
    "nobody is free now goodbye",
    "goodbye",
)


async def _hear(caller: Any, since: float, timeout: float = 30.0) -> tuple[str | None, float]:
    """What the agent says next (until it is quiet for a while), and when it started."""
    start = await caller.wait_for_sound(since, timeout)
    end = await caller.wait_for_quiet(start, quiet=1.2, timeout=timeout)
    heard = await asyncio.to_thread(recognise, caller.recording(start - 0.1, end + 0.1), SAYINGS)
    return heard, start


def test_a_call_greeting_balance_and_hang_up(temporal_settings: Any, redis_url: str, tmp_path: Path) -> None:
    asyncio.run(_greeting_balance_hang_up(temporal_settings, redis_url, tmp_path))


async def _greeting_balance_hang_up(temporal_settings: Any, redis_url: str, tmp_path: Path) -> None:
    async with call_bed(temporal_settings, redis_url, tmp_path) as bed:
        call_id, caller = await bed.incoming_call()
        dialled = await caller.dial()
        try:
            heard, _ = await _hear(caller, dialled)
            assert heard == "welcome to the bank say balance or press two for a person", heard
            said = await caller.say(speech("balance"))
            heard, _ = await _hear(caller, said)
            assert heard in (
                "your balance is forty two dollars say balance or press two for a person",
                "your balance is forty two dollars",
            ), heard
        finally:
            await caller.hang_up()
        record = await bed.h.wait_for_call(call_id, ("completed", "user_hangup", "failed"), timeout=30)
        assert record["status"] == "user_hangup", record
        assert record["node_path"] == ["welcome", "menu", "balance", "menu"], record


def test_a_key_press_asks_livekit_to_transfer(temporal_settings: Any, redis_url: str, tmp_path: Path) -> None:
    asyncio.run(_key_press_transfer(temporal_settings, redis_url, tmp_path))


async def _key_press_transfer(temporal_settings: Any, redis_url: str, tmp_path: Path) -> None:
    async with call_bed(temporal_settings, redis_url, tmp_path) as bed:
        call_id, caller = await bed.incoming_call()
        dialled = await caller.dial()
        try:
            heard, _ = await _hear(caller, dialled)
            assert heard == "welcome to the bank say balance or press two for a person", heard
            pressed = time.monotonic()
            await caller.press("2")
            # The key reached the agent as LiveKit SIP's DTMF packet, the flow transferred, the
            # agent asked LiveKit (TransferSIPParticipant) to REFER the caller to the desk.
            # Only LiveKit SIP can send that REFER, and it cannot be built here (see
            # engine.testbed.livekit_server): LiveKit says the caller has no SIP session, and the
            # flow takes its on_error branch.
            heard, _ = await _hear(caller, pressed, timeout=60)
            assert heard == "nobody is free now goodbye", heard
            record = await bed.h.wait_for_call(call_id, "completed", timeout=60)
        finally:
            await caller.hang_up()
        assert record["node_path"] == ["welcome", "menu", "person", "sorry"], record
        livekit_log = (tmp_path / "livekit" / "livekit-server.log").read_text()
        asked = [
            line
            for line in livekit_log.splitlines()
            if '"method": "TransferSIPParticipant"' in line
            and '"transferTo": "sip:desk@127.0.0.1"' in line
            and '"participant": "sip_+15557654321"' in line
        ]
        assert asked, "LiveKit was not asked to transfer the caller"
        assert any("no SIP session associated with participant" in line for line in asked)


def test_a_killed_agent_is_replaced_and_the_question_asked_again(
    temporal_settings: Any, redis_url: str, tmp_path: Path
) -> None:
    asyncio.run(_killed_agent(temporal_settings, redis_url, tmp_path))


async def _killed_agent(temporal_settings: Any, redis_url: str, tmp_path: Path) -> None:
    async with call_bed(temporal_settings, redis_url, tmp_path) as bed:
        call_id, caller = await bed.incoming_call()
        dialled = await caller.dial()
        try:
            heard, _ = await _hear(caller, dialled)
            assert heard == "welcome to the bank say balance or press two for a person", heard
            first = (await bed.bus.load_state(call_id, AGENT_STATE_OWNER) or {}).get("agent_id")
            assert first and first.startswith("agent-AJ_"), first
            [job] = bed.agent.job_processes(bed.livekit_port)
            job.kill()  # SIGKILL: it says nothing to anyone
            killed = time.monotonic()
            # LiveKit notices the agent gone (participant_left, to /webhooks/livekit), voxflow
            # tells the call and has LiveKit dispatch a new agent, which asks again.
            heard, _ = await _hear(caller, killed, timeout=90)
            assert heard == "say balance or press two for a person", heard
            second = (await bed.bus.load_state(call_id, AGENT_STATE_OWNER) or {}).get("agent_id")
            assert second and second != first, (first, second)
            said = await caller.say(speech("balance"))
            heard, _ = await _hear(caller, said)
            assert heard in (
                "your balance is forty two dollars say balance or press two for a person",
                "your balance is forty two dollars",
            ), heard
        finally:
            await caller.hang_up()
        record = await bed.h.wait_for_call(call_id, ("user_hangup", "completed", "failed"), timeout=30)
        assert record["status"] == "user_hangup", record
        assert record["node_path"][:3] == ["welcome", "menu", "balance"], record
        livekit_log = (tmp_path / "livekit" / "livekit-server.log").read_text()
        assert '"method": "CreateDispatch"' in livekit_log
