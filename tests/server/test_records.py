"""The call records store on SQLite and on PostgreSQL (tests/postgres_fixture.py)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from pathlib import Path

import pytest

from engine.core.errors import VoxflowError
from engine.server.records import RecordsStore, Turn, open_records


@pytest.fixture(params=["sqlite-file", "sqlite-memory", "postgresql"])
def records_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_database"))
    if request.param == "sqlite-memory":
        return "sqlite:///:memory:"
    return f"sqlite:///{tmp_path / 'calls.db'}"


async def _lifecycle(store: RecordsStore) -> None:
    call = uuid.uuid4().hex[:24]
    first = await store.ring(
        call, telnyx_call_id="v3:x", caller="+1", called="+2", flow_id="f", flow_version="v1"
    )
    again = await store.ring(
        call, telnyx_call_id="v3:x", caller="+1", called="+2", flow_id="f", flow_version="v1"
    )
    assert (first.inserted, again.inserted, again.status) == (True, False, "ringing")
    assert await store.call_started(call, flow_id="f", flow_version="v1", call={}, answered_at=1000.0)
    assert not await store.call_started(call, flow_id="f", flow_version="v1", call={}, answered_at=1000.0)
    changes = await store.node_entered(call, "a", ["s", "a"], {"x": 1, "y": "two"})
    assert changes == {"x": (None, 1), "y": (None, "two")}
    assert await store.node_entered(call, "b", ["~farewell", "b"], {"x": 1, "y": 3}) == {"y": ("two", 3)}
    turn = Turn(call, "e1-0", 1001.0, "caller", "speech", "hello", 0.9)
    assert await store.add_turn(turn) and not await store.add_turn(turn)
    assert (
        await store.call_ended(
            call,
            status="completed",
            reason="done",
            variables={"x": 2},
            path=["s", "a", "b"],
            events=[],
            ended_at=1010.0,
        )
        == 10.0
    )
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


def test_a_call_record_from_ringing_to_the_end(records_url: str) -> None:
    async def scenario() -> None:
        store = await open_records(records_url).open()
        try:
            await _lifecycle(store)
            await _telnyx_ids_and_closing(store)
            await _leases(store)
        finally:
            await store.close()

    asyncio.run(scenario())


async def _telnyx_ids_and_closing(store: RecordsStore) -> None:
    call = uuid.uuid4().hex[:24]
    await store.ring(
        call,
        telnyx_call_id="v3:tx",
        caller="+1",
        called="+2",
        flow_id="f",
        flow_version="v1",
        session_id="session-1",
        leg_id="leg-1",
    )
    assert (await store.find_telnyx_call(session_id="session-1"))["call_id"] == call
    assert (await store.find_telnyx_call(leg_id="leg-1"))["call_id"] == call
    assert await store.find_telnyx_call(session_id="other") is None
    assert await store.note_telnyx_ids(call, recording_id="rec-1", recording_url="https://r/1")
    assert not await store.note_telnyx_ids("nobody", recording_id="rec-2")
    found = await store.find_telnyx_call(telnyx_call_id="", recording_id="rec-1")
    assert found["recording_url"] == "https://r/1" and found["telnyx_session_id"] == "session-1"
    await store.note_telnyx_ids(call, session_id="")  # an empty value keeps what is there
    assert (await store.get_call(call))["telnyx_session_id"] == "session-1"
    assert [c["call_id"] for c in await store.live_calls(quiet_for=0)] == [call]
    assert await store.live_calls(quiet_for=3600) == []
    assert (
        await store.close_if_live(call, status="failed", reason="terminated", ended_at=time.time())
        is not None
    )
    assert await store.close_if_live(call, status="timeout", reason="again", ended_at=time.time()) is None
    record = await store.get_call(call)
    assert (record["status"], record["reason"]) == ("failed", "terminated")


async def _leases(store: RecordsStore) -> None:
    assert await store.lease("event:1", 30) == "claimed"
    assert await store.lease("event:1", 30) == "pending"
    await store.settle("event:1", 24 * 3600)
    assert await store.lease("event:1", 30) == "done"
    assert await store.lease("event:2", 0.01) == "claimed"
    await asyncio.sleep(0.05)  # the behaviour under test: the 0.01 s lease runs out
    assert await store.lease("event:2", 30) == "claimed"  # its holder died: the lease ran out
    await store.release("event:2")
    assert await store.lease("event:2", 30) == "claimed"


def test_an_older_records_table_gets_the_new_columns(tmp_path: Path) -> None:
    database = tmp_path / "old.db"
    with sqlite3.connect(database) as connection:
        connection.execute(
            "CREATE TABLE voxflow_calls (call_id TEXT PRIMARY KEY, telnyx_call_id TEXT, "
            "caller TEXT, called TEXT, flow_id TEXT, flow_version TEXT, status TEXT NOT NULL, "
            "reason TEXT, started_at DOUBLE PRECISION, answered_at DOUBLE PRECISION, "
            "ended_at DOUBLE PRECISION, duration DOUBLE PRECISION, current_node TEXT, "
            "node_path TEXT, variables TEXT, events TEXT, recording_url TEXT, "
            "updated_at DOUBLE PRECISION)"
        )
        connection.execute("INSERT INTO voxflow_calls (call_id, status) VALUES ('old', 'completed')")

    async def scenario() -> None:
        store = await open_records(f"sqlite:///{database}").open()
        record = await store.get_call("old")
        assert record is not None and record["telnyx_session_id"] is None
        await store.note_telnyx_ids("old", session_id="s")
        assert (await store.find_telnyx_call(session_id="s"))["call_id"] == "old"
        await store.close()
        again = await open_records(f"sqlite:///{database}").open()  # opened twice: no change
        await again.close()

    asyncio.run(scenario())


def test_the_end_arriving_first_still_makes_a_record(records_url: str) -> None:
    async def scenario() -> None:
        store = await open_records(records_url).open()
        await store.call_ended(
            "lost",
            status="failed",
            reason="x",
            variables={},
            path=["a"],
            events=[],
            ended_at=20.0,
            flow_id="f",
            answered_at=5.0,
        )
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
