"""The call records store on SQLite (and on PostgreSQL when VOXFLOW_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest

from engine.errors import VoxflowError
from engine.server.records import RecordsStore, Turn, open_records


def _urls(tmp_path: Path) -> list[str]:
    urls = [f"sqlite:///{tmp_path / 'calls.db'}", "sqlite:///:memory:"]
    if os.environ.get("VOXFLOW_TEST_POSTGRES_URL"):
        urls.append(os.environ["VOXFLOW_TEST_POSTGRES_URL"])
    return urls


async def _lifecycle(store: RecordsStore) -> None:
    call = uuid.uuid4().hex[:24]
    first = await store.ring(call, telnyx_call_id="v3:x", caller="+1", called="+2",
                             flow_id="f", flow_version="v1")
    again = await store.ring(call, telnyx_call_id="v3:x", caller="+1", called="+2",
                             flow_id="f", flow_version="v1")
    assert (first.inserted, again.inserted, again.status) == (True, False, "ringing")
    assert await store.call_started(call, flow_id="f", flow_version="v1", call={},
                                    answered_at=1000.0)
    assert not await store.call_started(call, flow_id="f", flow_version="v1", call={},
                                        answered_at=1000.0)
    changes = await store.node_entered(call, "a", ["s", "a"], {"x": 1, "y": "two"})
    assert changes == {"x": (None, 1), "y": (None, "two")}
    assert await store.node_entered(call, "b", ["~farewell", "b"], {"x": 1, "y": 3}) == {
        "y": ("two", 3)}
    turn = Turn(call, "e1-0", 1001.0, "caller", "speech", "hello", 0.9)
    assert await store.add_turn(turn) and not await store.add_turn(turn)
    assert await store.call_ended(call, status="completed", reason="done", variables={"x": 2},
                                  path=["s", "a", "b"], events=[], ended_at=1010.0) == 10.0
    # A late "answered" does not undo the end.
    assert not await store.mark_active(call)
    record = await store.get_call(call)
    assert record is not None
    assert record["status"] == "completed" and record["node_path"] == ["s", "a", "b"]
    assert record["variables"] == {"x": 2} and record["current_node"] is None
    assert [t.text for t in await store.transcript(call)] == ["hello"]
    assert (await store.find_by_telnyx_id("v3:x") or {}).get("call_id") == call
    assert [c["call_id"] for c in await store.list_calls(status="completed")] == [call]
    assert await store.count_live() == {"ringing": 0, "active": 0}
    assert await store.claim("k", 60) and not await store.claim("k", 60)
    await store.release("k")
    assert await store.claim("k", 60)


def test_a_call_record_from_ringing_to_the_end(tmp_path: Path) -> None:
    async def scenario(url: str) -> None:
        store = await open_records(url).open()
        try:
            await _lifecycle(store)
        finally:
            await store.close()
    for url in _urls(tmp_path):
        asyncio.run(scenario(url))


def test_the_end_arriving_first_still_makes_a_record(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await open_records(f"sqlite:///{tmp_path / 'c.db'}").open()
        await store.call_ended("lost", status="failed", reason="x", variables={}, path=["a"],
                               events=[], ended_at=20.0, flow_id="f", answered_at=5.0)
        record = await store.get_call("lost")
        assert record is not None and record["duration"] == 15.0 and record["flow_id"] == "f"
        await store.close()
    asyncio.run(scenario())


def test_bad_urls_are_explained(tmp_path: Path) -> None:
    with pytest.raises(VoxflowError, match="VOXFLOW_RECORDS_URL"):
        open_records("mysql://x")

    async def unreachable() -> None:
        store = open_records("postgresql://voxflow:secret@127.0.0.1:1/calls")
        with pytest.raises(VoxflowError, match=r"voxflow:\*\*\*@127.0.0.1:1"):
            await store.open()
        await store.close()
    asyncio.run(unreachable())
