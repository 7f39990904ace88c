"""Call records: SQLite by default, PostgreSQL by URL.

One table row per call (who called, which flow and version, status, times,
node path, final variables, recording URL), one row per transcript turn, and
short-lived "claims" that let several server replicas agree that a webhook
was already handled (duplicate deliveries, replayed signatures).

Both databases are driven through their ordinary blocking drivers (the
standard library's sqlite3, psycopg 3) on a small thread pool owned by the
store, so the same SQL serves both: it is written with ``?`` placeholders and
turned into psycopg's ``%s`` for PostgreSQL. SQLite gets one thread (its
writes are serialised anyway) in WAL mode, so the server and a worker in
another process can share the file.

Writes never move a call backwards: a late "ringing" does not undo "active",
and nothing but the end of the call sets a final status.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from engine.core.errors import VoxflowError
from engine.server import analytics

_T = TypeVar("_T")

RINGING = "ringing"
ACTIVE = "active"
LIVE_STATUSES = (RINGING, ACTIVE)
FINAL_STATUSES = ("completed", "user_hangup", "timeout", "failed", "transferred")
ALL_STATUSES = (*LIVE_STATUSES, *FINAL_STATUSES)
PATH_LIMIT = 1000  # node ids kept on a record (as the workflow keeps)
DEFAULT_URL = "sqlite:///.voxflow/calls.db"

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS voxflow_calls (
        call_id TEXT PRIMARY KEY,
        telnyx_call_id TEXT,
        caller TEXT,
        called TEXT,
        flow_id TEXT,
        flow_version TEXT,
        status TEXT NOT NULL,
        reason TEXT,
        started_at DOUBLE PRECISION,
        answered_at DOUBLE PRECISION,
        ended_at DOUBLE PRECISION,
        duration DOUBLE PRECISION,
        current_node TEXT,
        node_path TEXT,
        variables TEXT,
        events TEXT,
        recording_url TEXT,
        updated_at DOUBLE PRECISION,
        telnyx_session_id TEXT,
        telnyx_leg_id TEXT,
        recording_id TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS voxflow_calls_started ON voxflow_calls (started_at)",
    "CREATE INDEX IF NOT EXISTS voxflow_calls_status ON voxflow_calls (status)",
    """CREATE TABLE IF NOT EXISTS voxflow_transcript (
        call_id TEXT NOT NULL,
        turn_key TEXT NOT NULL,
        at DOUBLE PRECISION,
        speaker TEXT,
        kind TEXT,
        text TEXT,
        confidence DOUBLE PRECISION,
        PRIMARY KEY (call_id, turn_key)
    )""",
    "CREATE INDEX IF NOT EXISTS voxflow_calls_telnyx ON voxflow_calls (telnyx_call_id)",
    "CREATE INDEX IF NOT EXISTS voxflow_calls_session ON voxflow_calls (telnyx_session_id)",
    """CREATE TABLE IF NOT EXISTS voxflow_claims (
        claim TEXT PRIMARY KEY,
        expires_at DOUBLE PRECISION
    )""",
    *analytics.SCHEMA,  # the stats' index and tables (engine.server.analytics)
    # What outside services answered during a call (voxflow test --from-call replays it).
    """CREATE TABLE IF NOT EXISTS voxflow_service_answers (
        call_id TEXT NOT NULL,
        run_key TEXT NOT NULL,
        at DOUBLE PRECISION,
        flow_id TEXT,
        node_id TEXT,
        node_type TEXT,
        answer TEXT,
        PRIMARY KEY (call_id, run_key)
    )""",
)
_CALL_COLUMNS = (
    "call_id",
    "telnyx_call_id",
    "caller",
    "called",
    "flow_id",
    "flow_version",
    "status",
    "reason",
    "started_at",
    "answered_at",
    "ended_at",
    "duration",
    "current_node",
    "node_path",
    "variables",
    "events",
    "recording_url",
    "updated_at",
    "telnyx_session_id",
    "telnyx_leg_id",
    "recording_id",
)
# Columns added after the first release: added to an older table when it is opened.
_ADDED_COLUMNS = ("telnyx_session_id", "telnyx_leg_id", "recording_id")
_JSON_COLUMNS: dict[str, Any] = {"node_path": [], "variables": {}, "events": []}


@dataclass(frozen=True)
class Turn:
    """One transcript turn: who spoke (``agent`` / ``caller``), what kind, the words."""

    call_id: str
    key: str  # unique per call: a turn written twice (a retried activity) is kept once
    at: float
    speaker: str
    kind: str  # "speech", "dtmf", "recording"
    text: str
    confidence: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "speaker": self.speaker,
            "kind": self.kind,
            "text": self.text,
            "confidence": self.confidence,
        }


@dataclass(frozen=True)
class Ringing:
    """What :meth:`RecordsStore.ring` found: the claim taken? the call new? its status."""

    claimed: bool
    inserted: bool
    status: str | None


class RecordsStore:
    """Call records on SQLite or PostgreSQL. Every method is a coroutine; use one per process."""

    def __init__(self, url: str, connect: Callable[[], Any], placeholder: str, threads: int) -> None:
        self.url = url
        self._connect = connect
        self._placeholder = placeholder
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="voxflow-records")
        self._connections: list[Any] = []
        self._lock = threading.Lock()
        self._last_prune = 0.0

    # ---- plumbing -------------------------------------------------------

    async def _run(self, work: Callable[[Any], _T]) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._in_thread, work)

    def _in_thread(self, work: Callable[[Any], _T]) -> _T:
        connection = getattr(self._local, "connection", None)
        for attempt in (1, 2):
            if connection is None:
                connection = self._local.connection = self._connect()
                with self._lock:
                    self._connections.append(connection)
            try:
                cursor = connection.cursor()
                try:
                    result = work(_Cursor(cursor, self._placeholder))
                finally:
                    cursor.close()
                connection.commit()
                return result
            except Exception as error:
                try:
                    connection.rollback()
                except Exception:  # noqa: S110 - the connection is being replaced
                    pass
                if attempt == 2 or not _is_disconnect(error):
                    raise
                connection = self._local.connection = None  # reconnect once
        raise AssertionError("unreachable")

    async def open(self) -> RecordsStore:
        """Create the tables if needed; fails in plain words when the database is unreachable."""

        def create(cur: _Cursor) -> None:
            cur.execute(SCHEMA[0])
            cur.execute("SELECT * FROM voxflow_calls WHERE 1 = 0")
            present = cur.column_names()
            guard = "IF NOT EXISTS " if self._placeholder != "?" else ""  # PostgreSQL: replicas
            for column in _ADDED_COLUMNS:
                if column not in present:
                    cur.execute(f"ALTER TABLE voxflow_calls ADD COLUMN {guard}{column} TEXT")
            for sql in SCHEMA[1:]:
                cur.execute(sql)

        try:
            await self._run(create)
        except Exception as error:
            raise VoxflowError(
                f"the call records database ({_without_password(self.url)}) cannot be used: "
                f"{error}. Check VOXFLOW_RECORDS_URL."
            ) from None
        return self

    async def close(self) -> None:
        def close_all() -> None:
            with self._lock:
                for connection in self._connections:
                    try:
                        connection.close()
                    except Exception:  # noqa: S110 - closing anyway
                        pass
                self._connections.clear()

        await asyncio.get_running_loop().run_in_executor(None, close_all)
        self._pool.shutdown(wait=False)

    # ---- writing a call -------------------------------------------------

    async def ring(
        self,
        call_id: str,
        *,
        telnyx_call_id: str,
        caller: str,
        called: str,
        flow_id: str | None,
        flow_version: str | None,
        status: str = RINGING,
        reason: str = "",
        claim: str | None = None,
        claim_ttl: float = 0.0,
        session_id: str = "",
        leg_id: str = "",
    ) -> Ringing:
        """The call arrived: its record as ``status``, unless it is known already; and first,
        :meth:`claim` of ``claim``, in the same transaction (one round trip on the path
        where a caller waits for the TeXML answer).

        A final ``status`` is for calls that never run a flow (a message, a rejection).
        """
        now = time.time()
        ended = now if status in FINAL_STATUSES else None

        def work(cur: _Cursor) -> Ringing:
            if claim is not None:
                cur.execute(
                    "INSERT INTO voxflow_claims (claim, expires_at) VALUES (?, ?) "
                    "ON CONFLICT (claim) DO UPDATE SET expires_at = excluded.expires_at "
                    "WHERE voxflow_claims.expires_at < ?",
                    (claim, now + claim_ttl, now),
                )
                if not cur.rowcount:
                    return Ringing(claimed=False, inserted=False, status=None)
            cur.execute(
                "INSERT INTO voxflow_calls (call_id, telnyx_call_id, caller, called, flow_id, "
                "flow_version, status, reason, started_at, ended_at, duration, node_path, "
                "variables, events, updated_at, telnyx_session_id, telnyx_leg_id) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (call_id) DO NOTHING",
                (
                    call_id,
                    telnyx_call_id,
                    caller,
                    called,
                    flow_id,
                    flow_version,
                    status,
                    reason,
                    now,
                    ended,
                    0.0 if ended else None,
                    "[]",
                    "{}",
                    "[]",
                    now,
                    session_id or None,
                    leg_id or None,
                ),
            )
            if cur.rowcount:
                return Ringing(claimed=True, inserted=True, status=status)
            row = cur.one("SELECT status FROM voxflow_calls WHERE call_id = ?", (call_id,))
            return Ringing(claimed=True, inserted=False, status=row[0] if row else None)

        return await self._run(work)

    async def call_started(
        self,
        call_id: str,
        *,
        flow_id: str,
        flow_version: str,
        call: Mapping[str, Any],
        answered_at: float,
    ) -> bool:
        """The workflow began: ``active``. True if this changed the status (for call:active)."""
        now = time.time()

        def work(cur: _Cursor) -> bool:
            before = cur.one("SELECT status FROM voxflow_calls WHERE call_id = ?", (call_id,))
            cur.execute(
                "INSERT INTO voxflow_calls (call_id, telnyx_call_id, caller, called, flow_id, "
                "flow_version, status, started_at, answered_at, node_path, variables, events, "
                "updated_at) VALUES (?,?,?,?,?,?,'active',?,?,'[]','{}','[]',?) "
                "ON CONFLICT (call_id) DO UPDATE SET flow_id = excluded.flow_id, "
                "flow_version = excluded.flow_version, answered_at = excluded.answered_at, "
                "updated_at = excluded.updated_at, status = CASE WHEN voxflow_calls.status = "
                "'ringing' THEN 'active' ELSE voxflow_calls.status END",
                (
                    call_id,
                    str(call.get("call_sid") or ""),
                    str(call.get("caller_number") or ""),
                    str(call.get("called_number") or ""),
                    flow_id,
                    flow_version,
                    answered_at,
                    answered_at,
                    now,
                ),
            )
            return before is None or before[0] == RINGING

        return await self._run(work)

    async def node_entered(
        self, call_id: str, node_id: str, walked: Sequence[str], variables: Mapping[str, Any]
    ) -> dict[str, tuple[Any, Any]]:
        """Note the node the call is in; returns the variables that changed: name → (old, new)."""
        now = time.time()
        new_variables = _jsonable(variables)

        def work(cur: _Cursor) -> dict[str, tuple[Any, Any]]:
            row = cur.one("SELECT node_path, variables FROM voxflow_calls WHERE call_id = ?", (call_id,))
            if row is None:
                return {}  # not a call this store knows (its start was never recorded)
            path = _loads(row[0], [])
            old = _loads(row[1], {})
            path = (path + [n for n in walked if not n.startswith("~")])[-PATH_LIMIT:]
            cur.execute(
                "UPDATE voxflow_calls SET current_node = ?, node_path = ?, variables = ?, "
                "updated_at = ? WHERE call_id = ?",
                (node_id, json.dumps(path), json.dumps(new_variables), now, call_id),
            )
            return {
                name: (old.get(name), value)
                for name, value in new_variables.items()
                if name not in old or old[name] != value
            }

        return await self._run(work)

    async def call_ended(
        self,
        call_id: str,
        *,
        status: str,
        reason: str,
        variables: Mapping[str, Any],
        path: Sequence[str],
        events: Sequence[Mapping[str, Any]],
        ended_at: float,
        flow_id: str | None = None,
        flow_version: str | None = None,
        answered_at: float | None = None,
    ) -> float:
        """The call's final state; returns its duration in seconds."""
        now = time.time()

        def work(cur: _Cursor) -> float:
            row = cur.one(
                "SELECT answered_at, started_at, status, flow_id, flow_version "
                "FROM voxflow_calls WHERE call_id = ?",
                (call_id,),
            )
            began = (row[0] or row[1]) if row is not None else answered_at
            duration = max(0.0, ended_at - (began or ended_at))
            values = (
                status,
                reason,
                json.dumps(_jsonable(variables)),
                json.dumps(list(path)[-PATH_LIMIT:]),
                json.dumps(_jsonable(list(events))),
                ended_at,
                round(duration, 3),
                now,
            )
            if row is None:
                cur.execute(
                    "INSERT INTO voxflow_calls (status, reason, variables, node_path, events, "
                    "ended_at, duration, updated_at, call_id, flow_id, flow_version, "
                    "answered_at, started_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (*values, call_id, flow_id, flow_version, answered_at, answered_at),
                )
            else:
                cur.execute(
                    "UPDATE voxflow_calls SET status = ?, reason = ?, variables = ?, "
                    "node_path = ?, events = ?, ended_at = ?, duration = ?, updated_at = ?, "
                    "current_node = NULL WHERE call_id = ?",
                    (*values, call_id),
                )
            if row is None or row[2] not in FINAL_STATUSES:  # counted once, however retried
                analytics.count_ended_call(
                    cur,
                    call_id,
                    (row[3] if row else None) or flow_id,
                    (row[4] if row else None) or flow_version,
                    row[1] if row is not None and row[1] is not None else answered_at,
                    path,
                )
            return duration

        return await self._run(work)

    async def mark_active(self, call_id: str) -> bool:
        """Telnyx says the call was answered; True if it was ringing."""

        def work(cur: _Cursor) -> bool:
            cur.execute(
                "UPDATE voxflow_calls SET status = 'active', answered_at = COALESCE(answered_at, ?),"
                " updated_at = ? WHERE call_id = ? AND status = 'ringing'",
                (time.time(), time.time(), call_id),
            )
            return bool(cur.rowcount)

        return await self._run(work)

    async def set_recording_url(self, call_id: str, url: str) -> None:
        await self.note_telnyx_ids(call_id, recording_url=url)

    async def note_telnyx_ids(
        self,
        call_id: str,
        *,
        session_id: str = "",
        leg_id: str = "",
        recording_id: str = "",
        recording_url: str = "",
    ) -> bool:
        """Keep what Telnyx calls this call and its recording (empty values change nothing).

        False when there is no record of the call.
        """

        def work(cur: _Cursor) -> bool:
            cur.execute(
                "UPDATE voxflow_calls SET telnyx_session_id = COALESCE(?, telnyx_session_id), "
                "telnyx_leg_id = COALESCE(?, telnyx_leg_id), "
                "recording_id = COALESCE(?, recording_id), "
                "recording_url = COALESCE(?, recording_url), updated_at = ? WHERE call_id = ?",
                (
                    session_id or None,
                    leg_id or None,
                    recording_id or None,
                    recording_url or None,
                    time.time(),
                    call_id,
                ),
            )
            return bool(cur.rowcount)

        return await self._run(work)

    async def find_telnyx_call(
        self, *, telnyx_call_id: str = "", session_id: str = "", leg_id: str = "", recording_id: str = ""
    ) -> dict[str, Any] | None:
        """The call Telnyx means: by its call_control_id (CallSid), else its session, its leg,
        or its recording's id, in that order (a recording event may carry only some)."""
        probes = [
            (column, value)
            for column, value in (
                ("telnyx_call_id", telnyx_call_id),
                ("telnyx_session_id", session_id),
                ("telnyx_leg_id", leg_id),
                ("recording_id", recording_id),
            )
            if value
        ]

        def work(cur: _Cursor) -> dict[str, Any] | None:
            for column, value in probes:
                row = cur.one(
                    f"SELECT {', '.join(_CALL_COLUMNS)} FROM voxflow_calls "
                    f"WHERE {column} = ? ORDER BY started_at DESC LIMIT 1",
                    (value,),
                )
                if row is not None:
                    return _call_dict(row)
            return None

        return await self._run(work)

    async def close_if_live(self, call_id: str, *, status: str, reason: str, ended_at: float) -> float | None:
        """End a call that is still ringing or active (nothing else); its duration, or None
        when it had ended already (or is unknown). For ends no workflow reports."""

        def work(cur: _Cursor) -> float | None:
            row = cur.one(
                "SELECT answered_at, started_at FROM voxflow_calls WHERE call_id = ? "
                "AND status IN ('ringing', 'active')",
                (call_id,),
            )
            if row is None:
                return None
            duration = round(max(0.0, ended_at - (row[0] or row[1] or ended_at)), 3)
            cur.execute(
                "UPDATE voxflow_calls SET status = ?, reason = ?, ended_at = ?, duration = ?, "
                "current_node = NULL, updated_at = ? WHERE call_id = ? "
                "AND status IN ('ringing', 'active')",
                (status, reason, ended_at, duration, time.time(), call_id),
            )
            return duration if cur.rowcount else None

        return await self._run(work)

    async def live_calls(self, *, quiet_for: float, limit: int = 1000) -> list[dict[str, Any]]:
        """Ringing and active calls whose record has not changed for ``quiet_for`` seconds."""

        def work(cur: _Cursor) -> list[dict[str, Any]]:
            cur.execute(
                f"SELECT {', '.join(_CALL_COLUMNS)} FROM voxflow_calls WHERE status IN "
                "('ringing', 'active') AND COALESCE(updated_at, started_at) < ? "
                "ORDER BY started_at LIMIT ?",
                (time.time() - quiet_for, limit),
            )
            return [_call_dict(row) for row in cur.all()]

        return await self._run(work)

    async def add_turn(self, turn: Turn) -> bool:
        """Save a transcript turn; False when this turn was saved already."""

        def work(cur: _Cursor) -> bool:
            cur.execute(
                "INSERT INTO voxflow_transcript (call_id, turn_key, at, speaker, kind, text, "
                "confidence) VALUES (?,?,?,?,?,?,?) ON CONFLICT (call_id, turn_key) DO NOTHING",
                (turn.call_id, turn.key, turn.at, turn.speaker, turn.kind, turn.text, turn.confidence),
            )
            return bool(cur.rowcount)

        return await self._run(work)

    async def node_run(self, call_id: str, run_key: str, run: analytics.NodeRun) -> None:
        """How a node run went with the caller (asked, no-input, no-match, confidence)."""
        await self._run(lambda cur: analytics.save_node_run(cur, call_id, run_key, run))

    async def service_answer(
        self,
        call_id: str,
        run_key: str,
        flow_id: str,
        node_id: str,
        node_type: str,
        answer: Mapping[str, Any],
    ) -> None:
        """What a node that calls outside got (``exit``/``outputs``, or ``error``); kept once."""
        await self._run(
            lambda cur: cur.execute(
                "INSERT INTO voxflow_service_answers (call_id, run_key, at, flow_id, node_id, "
                "node_type, answer) VALUES (?,?,?,?,?,?,?) ON CONFLICT (call_id, run_key) DO UPDATE "
                "SET answer = excluded.answer",
                (
                    call_id,
                    run_key,
                    time.time(),
                    flow_id,
                    node_id,
                    node_type,
                    json.dumps(_jsonable(dict(answer))),
                ),
            )
        )

    async def service_answers(self, call_id: str) -> list[dict[str, Any]]:
        """The answers of one call's outside services, in the order they came."""

        def work(cur: _Cursor) -> list[dict[str, Any]]:
            cur.execute(
                "SELECT at, flow_id, node_id, node_type, answer FROM "
                "voxflow_service_answers WHERE call_id = ? ORDER BY at, run_key",
                (call_id,),
            )
            return [
                {"at": at, "flow_id": flow, "node_id": node, "node_type": kind, "answer": _loads(answer, {})}
                for at, flow, node, kind, answer in cur.all()
            ]

        return await self._run(work)

    # ---- webhook claims (duplicates and replays, across replicas) -------

    async def claim(self, key: str, ttl: float) -> bool:
        """True the first time ``key`` is claimed within ``ttl`` seconds; False after."""
        now = time.time()
        prune = now - self._last_prune > 60
        if prune:
            self._last_prune = now

        def work(cur: _Cursor) -> bool:
            if prune:
                cur.execute("DELETE FROM voxflow_claims WHERE expires_at < ?", (now,))
            cur.execute(
                "INSERT INTO voxflow_claims (claim, expires_at) VALUES (?, ?) "
                "ON CONFLICT (claim) DO UPDATE SET expires_at = excluded.expires_at "
                "WHERE voxflow_claims.expires_at < ?",
                (key, now + ttl, now),
            )
            return bool(cur.rowcount)

        return await self._run(work)

    async def lease(self, key: str, lease: float) -> str:
        """Claim ``key`` for ``lease`` seconds while its work is done: "claimed"; or, when
        it is taken, "done" (held by :meth:`settle`) or "pending" (another delivery is at
        work, or died at it: the lease runs out, and then the key can be claimed again)."""
        now = time.time()

        def work(cur: _Cursor) -> str:
            cur.execute(
                "INSERT INTO voxflow_claims (claim, expires_at) VALUES (?, ?) "
                "ON CONFLICT (claim) DO UPDATE SET expires_at = excluded.expires_at "
                "WHERE voxflow_claims.expires_at < ?",
                (key, now + lease, now),
            )
            if cur.rowcount:
                return "claimed"
            row = cur.one("SELECT expires_at FROM voxflow_claims WHERE claim = ?", (key,))
            return "done" if row is not None and row[0] > now + lease + 1 else "pending"

        return await self._run(work)

    async def settle(self, key: str, ttl: float) -> None:
        """The work of a :meth:`lease` is done: keep the claim for ``ttl`` seconds."""
        await self._run(
            lambda cur: cur.execute(
                "UPDATE voxflow_claims SET expires_at = ? WHERE claim = ?", (time.time() + ttl, key)
            )
        )

    async def release(self, key: str) -> None:
        """Undo a claim whose work failed, so Telnyx's next delivery is handled."""
        await self._run(lambda cur: cur.execute("DELETE FROM voxflow_claims WHERE claim = ?", (key,)))

    # ---- reading --------------------------------------------------------

    async def get_call(self, call_id: str) -> dict[str, Any] | None:
        def work(cur: _Cursor) -> dict[str, Any] | None:
            row = cur.one(
                f"SELECT {', '.join(_CALL_COLUMNS)} FROM voxflow_calls WHERE call_id = ?", (call_id,)
            )
            return None if row is None else _call_dict(row)

        return await self._run(work)

    async def find_by_telnyx_id(self, telnyx_call_id: str) -> dict[str, Any] | None:
        def work(cur: _Cursor) -> dict[str, Any] | None:
            row = cur.one(
                f"SELECT {', '.join(_CALL_COLUMNS)} FROM voxflow_calls WHERE telnyx_call_id = ?",
                (telnyx_call_id,),
            )
            return None if row is None else _call_dict(row)

        return await self._run(work)

    async def list_calls(
        self,
        *,
        limit: int = 50,
        status: str | None = None,
        flow_id: str | None = None,
        live: bool = False,
    ) -> list[dict[str, Any]]:
        clauses, params = [], []
        if status:
            clauses.append("status = ?")
            params.append(status)
        if live:
            clauses.append("status IN ('ringing', 'active')")
        if flow_id:
            clauses.append("flow_id = ?")
            params.append(flow_id)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT {', '.join(_CALL_COLUMNS)} FROM voxflow_calls{where} ORDER BY started_at DESC LIMIT ?"

        def work(cur: _Cursor) -> list[dict[str, Any]]:
            cur.execute(sql, (*params, max(1, min(limit, 1000))))
            return [_call_dict(row) for row in cur.all()]

        return await self._run(work)

    async def transcript(self, call_id: str) -> list[Turn]:
        def work(cur: _Cursor) -> list[Turn]:
            cur.execute(
                "SELECT call_id, turn_key, at, speaker, kind, text, confidence "
                "FROM voxflow_transcript WHERE call_id = ? ORDER BY at, turn_key",
                (call_id,),
            )
            return [Turn(*row) for row in cur.all()]

        return await self._run(work)

    async def count_live(self) -> dict[str, int]:
        def work(cur: _Cursor) -> dict[str, int]:
            cur.execute(
                "SELECT status, COUNT(*) FROM voxflow_calls "
                "WHERE status IN ('ringing', 'active') GROUP BY status",
                (),
            )
            counts = {status: 0 for status in LIVE_STATUSES}
            counts.update({str(status): int(n) for status, n in cur.all()})
            return counts

        return await self._run(work)


class _Cursor:
    """A DB-API cursor taking ``?`` placeholders whatever the driver wants."""

    def __init__(self, cursor: Any, placeholder: str) -> None:
        self._cursor = cursor
        self._placeholder = placeholder

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        if self._placeholder != "?":
            sql = sql.replace("?", self._placeholder)
        self._cursor.execute(sql, tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if self._placeholder != "?":
            sql = sql.replace("?", self._placeholder)
        if rows:
            self._cursor.executemany(sql, [tuple(row) for row in rows])

    def one(self, sql: str, params: Sequence[Any]) -> Any:
        self.execute(sql, params)
        return self._cursor.fetchone()

    def all(self) -> list[Any]:
        return list(self._cursor.fetchall())

    def column_names(self) -> set[str]:
        return {str(d[0]).lower() for d in (self._cursor.description or ())}

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)


def open_records(url: str | None = None) -> RecordsStore:
    """A store for ``url`` (``sqlite:///path``, ``sqlite:///:memory:``, ``postgresql://...``).

    Call :meth:`RecordsStore.open` before use.
    """
    url = (url or DEFAULT_URL).strip()
    scheme = url.split("://", 1)[0]
    if scheme == "sqlite" and url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)

        def connect_sqlite() -> sqlite3.Connection:
            connection = sqlite3.connect(path, timeout=30)
            if path != ":memory:":
                connection.execute("PRAGMA journal_mode=WAL")
                # WAL with NORMAL: durable across a process crash, no fsync per write.
                connection.execute("PRAGMA synchronous=NORMAL")
            return connection

        return RecordsStore(url, connect_sqlite, "?", threads=1)
    if scheme in ("postgresql", "postgres"):
        import psycopg

        def connect_postgres() -> Any:
            return psycopg.connect(url, connect_timeout=10)

        return RecordsStore(url, connect_postgres, "%s", threads=4)
    raise VoxflowError(
        f"VOXFLOW_RECORDS_URL should be sqlite:///path/to/calls.db or "
        f"postgresql://user:password@host:5432/db, not '{_without_password(url)}'."
    )


def _is_disconnect(error: Exception) -> bool:
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    return isinstance(error, (psycopg.OperationalError, psycopg.InterfaceError))


def _call_dict(row: Sequence[Any]) -> dict[str, Any]:
    data = dict(zip(_CALL_COLUMNS, row, strict=True))
    for name, empty in _JSON_COLUMNS.items():
        data[name] = _loads(data[name], empty)
    return data


def _loads(text: Any, empty: Any) -> Any:
    if not text:
        return type(empty)()
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return type(empty)()


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _without_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
