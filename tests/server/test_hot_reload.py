"""Hot reload while calls are in progress: a valid change, an invalid change, a deleted file.

Each test starts a call on the ``hold`` flow (it waits for a ``release``
signal), changes flows/ under the running server, checks what a new call gets,
and only then lets the first call finish: it must have run, start to end, on
the version it started with.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from engine.runtime.messages import CallResult, workflow_id
from engine.server.telnyx import call_id_for
from tests.server.support import API_TOKEN, Harness, harness, read_sse, telnyx_call_id, texml_form
from tests.waiting import wait_until

HOLD = "+15550002000"


async def _start_hold_call(h: Harness) -> str:
    telnyx_id = telnyx_call_id()
    status, xml = await h.texml(texml_form(telnyx_id, called=HOLD))
    assert status == 200 and "<Dial>" in xml, xml
    call_id = call_id_for(telnyx_id)
    await h.wait_for_call(call_id, "active")
    return call_id


async def _release(h: Harness, call_id: str) -> CallResult:
    handle = h.ctx.temporal_client().get_workflow_handle(workflow_id(call_id), result_type=CallResult)
    await handle.signal("release")
    return await asyncio.wait_for(handle.result(), 15)


def test_a_valid_change_serves_new_calls_and_spares_the_call_in_progress(
    temporal_settings: Any, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with harness(temporal_settings, tmp_path, watch=True) as h:
            library = h.ctx.library
            old = library.flow("hold")
            assert old is not None
            first = await _start_hold_call(h)

            hold_file = h.ctx.settings.flows_dir / "hold.yaml"
            written = time.monotonic()
            hold_file.write_text(hold_file.read_text().replace('"one"', '"two"'))
            await wait_until(lambda: library.flow("hold") is not old, what="the reload")
            assert time.monotonic() - written < 2.0  # soon; bench/ measures how soon
            new = library.flow("hold")
            assert new is not None and new.version != old.version

            second = await _start_hold_call(h)
            assert (await h.ctx.records.get_call(second))["flow_version"] == new.version
            assert (await h.ctx.records.get_call(first))["status"] == "active"

            first_result = await _release(h, first)
            second_result = await _release(h, second)
            assert first_result.flow_version == old.version
            assert first_result.variables["version_seen"] == "one"
            assert second_result.flow_version == new.version
            assert second_result.variables["version_seen"] == "two"
            record = await h.wait_for_call(first, "completed")
            assert record["flow_version"] == old.version

    asyncio.run(scenario())


def test_an_invalid_change_keeps_the_previous_version_and_shows_the_errors(
    temporal_settings: Any, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with harness(temporal_settings, tmp_path, watch=True) as h:
            library = h.ctx.library
            old = library.flow("hold")
            assert old is not None
            events: list[dict[str, Any]] = []
            ready = asyncio.Event()
            reader = asyncio.create_task(
                read_sse(h.http, f"{h.url}/api/events?token={API_TOKEN}", events, ready)
            )
            await asyncio.wait_for(ready.wait(), 5)
            first = await _start_hold_call(h)

            hold_file = h.ctx.settings.flows_dir / "hold.yaml"
            hold_file.write_text(
                hold_file.read_text().replace("next: done\n    on_timeout", "next: dnoe\n    on_timeout")
            )
            # (Reloads with no change came before, as the harness waited for the watcher.)
            reloaded = await wait_until(lambda: _kept(events), what="a reload that kept a flow")
            assert reloaded["kept"] == ["hold"]
            assert any("dnoe" in error["message"] for error in reloaded["errors"])
            problems = await h.api("/api/problems")
            assert any(
                "dnoe" in p["message"] and p["file"].endswith("hold.yaml") for p in problems["problems"]
            )
            terminal = "".join(h.stack.options.out.lines)  # type: ignore[union-attr]
            assert "hold.yaml" in terminal and "no node named 'dnoe'" in terminal
            assert library.flow("hold") is old

            second = await _start_hold_call(h)  # still served, on the previous version
            assert (await h.ctx.records.get_call(second))["flow_version"] == old.version
            for call_id in (first, second):
                result = await _release(h, call_id)
                assert result.status == "completed" and result.flow_version == old.version
            reader.cancel()

    asyncio.run(scenario())


def test_a_deleted_file_stops_new_calls_but_not_the_call_in_progress(
    temporal_settings: Any, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with harness(temporal_settings, tmp_path, watch=True) as h:
            library = h.ctx.library
            old = library.flow("hold")
            assert old is not None
            first = await _start_hold_call(h)

            (h.ctx.settings.flows_dir / "hold.yaml").unlink()
            await wait_until(lambda: library.flow("hold") is None, what="the reload")

            status, xml = await h.texml(texml_form(telnyx_call_id(), called=HOLD))
            assert status == 200 and "<Reject" in xml  # the default for numbers without a flow
            flows = await h.api("/api/flows")
            assert "hold" not in [f["flow_id"] for f in flows["flows"]]

            assert (await h.ctx.records.get_call(first))["status"] == "active"
            result = await _release(h, first)
            assert result.status == "completed" and result.flow_version == old.version
            await h.wait_for_call(first, "completed")

    asyncio.run(scenario())


def _kept(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    reloads = [e["data"] for e in events if e["type"] == "flows:reloaded"]
    return next((r for r in reloads if r["kept"]), None)
