"""A hangup at the very start of a call is never lost.

The caller hangs up while the workflow is still writing the call's first records
(the call started, the wait_for_signal node reached). Cancelling that write once
ended the record activity as a "failed write" and let the node go on waiting,
so the hangup was lost and the call stayed ``active``. Each call here hangs up
after a different short delay, so some land in those first moments.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from engine.server.telnyx import call_id_for
from tests.server.support import harness, telnyx_call_id, texml_form

HOLD_NUMBER = "+15550002000"  # tests/server/flows/triggers/hold.yaml: a wait_for_signal flow


def test_a_hangup_in_the_first_moments_ends_the_call(temporal_settings: Any, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with harness(temporal_settings, tmp_path) as h:
            calls = []
            for delay in (0.0, 0.005, 0.01, 0.02, 0.04, 0.08):
                sid = telnyx_call_id()
                status, _ = await h.texml(texml_form(sid, called=HOLD_NUMBER))
                assert status == 200
                await asyncio.sleep(delay)  # the behaviour under test: how soon the caller hangs up
                status, _ = await h.texml(
                    texml_form(
                        sid,
                        called=HOLD_NUMBER,
                        status="completed",
                        CallbackSource="call-progress-events",
                        SequenceNumber="3",
                    )
                )
                assert status == 200
                calls.append(call_id_for(sid))
            for call_id in calls:
                record = await h.wait_for_call(call_id, "user_hangup", timeout=60)
                assert record["ended_at"] is not None

    asyncio.run(scenario())
