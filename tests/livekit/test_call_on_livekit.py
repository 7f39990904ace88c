"""Calls on the real LiveKit server, the real agent process and the real workflow.

Signed call.initiated → the TeXML answer dialling sip:call-<id>@… → the caller in
that room as LiveKit SIP puts it there (engine.livekit_caller) → LiveKit
dispatches the voxflow agent (``voxflow agent``: engine/agent/worker.py) →
the workflow. What the caller hears is recognised from its recording with the
offline recogniser, against the grammar of what the flow could say.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from engine.livekit_caller import recognise
from tests.agent.speech import speech
from tests.livekit.call_bed import call_bed

SAYINGS = (
    "welcome to the bank say balance or press two for a person",
    "say balance or press two for a person",
    "sorry say balance or press two for a person",
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


def test_a_call_greeting_balance_and_hang_up(temporal_settings: Any, redis_url: str,
                                            tmp_path: Path) -> None:
    asyncio.run(_greeting_balance_hang_up(temporal_settings, redis_url, tmp_path))


async def _greeting_balance_hang_up(temporal_settings: Any, redis_url: str,
                                    tmp_path: Path) -> None:
    async with call_bed(temporal_settings, redis_url, tmp_path) as bed:
        call_id, caller = await bed.incoming_call()
        dialled = await caller.dial()
        try:
            heard, _ = await _hear(caller, dialled)
            assert heard == "welcome to the bank say balance or press two for a person", (
                heard, bed.agent.tail())
            said = await caller.say(speech("balance"))
            heard, _ = await _hear(caller, said)
            assert heard in ("your balance is forty two dollars say balance or press two for "
                             "a person", "your balance is forty two dollars"), heard
        finally:
            await caller.hang_up()
        record = await bed.h.wait_for_call(call_id, ("completed", "hangup", "user_hangup",
                                                     "failed"), timeout=30)
        print(record)
        assert record["status"] == "user_hangup", record
