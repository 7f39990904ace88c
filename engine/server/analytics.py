"""Call analytics from the call records, by SQL: what callers actually do in a flow.

Per flow and version: how many calls, how they ended (completed, transferred,
user hangup, failed, timeout), their duration (p50 and p95), and for every
node the share of calls that reached it and that ended there (drop-off), how
often its question went unanswered (no-input) or was not understood
(no-match), how confident the recogniser was, and how many calls took each
edge. Shown by ``voxflow stats``, ``GET /api/flows/{flow}/stats`` and the
monitor page over the diagram.

Where the figures come from, so that a million calls are counted in well
under two seconds on SQLite:

- calls, endings and durations: ``voxflow_calls``, through the covering index
  ``voxflow_calls_stats`` (flow, version, start, status, duration): one range
  scan of the index, grouped by status and tenth of a second of duration;
- nodes and edges: ``voxflow_stats_daily``, one row per flow, version, day
  (UTC, of the call's start), node or edge. A call's counts are added there once,
  in the same transaction that records its end (a retried end adds nothing:
  only a call that was not ended yet is counted). The per-node answers
  (asked, no-input, no-match, confidence) come from ``voxflow_node_runs``,
  written as each voice node finishes. ``--since`` a time that is not on the
  day counts whole days from the roll-up and the calls of the day it
  starts in from the records themselves, so the figures are exact.

Percentiles are nearest-rank, on durations rounded down to a tenth of a second.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.language.duration import parse_duration

if TYPE_CHECKING:
    from engine.server.records import RecordsStore, _Cursor

DAY = 86400.0
OUTCOMES = ("completed", "transferred", "user_hangup", "failed", "timeout")
EDGE = ">"  # between the two node ids of an edge: node ids never contain it
FULL_VERSION = 64  # characters of a flow version (a SHA-256 in hex)

SCHEMA = (
    # Calls, endings and durations of one flow version over a time: a range scan of this.
    "CREATE INDEX IF NOT EXISTS voxflow_calls_stats ON voxflow_calls "
    "(flow_id, flow_version, started_at, status, duration)",
    """CREATE TABLE IF NOT EXISTS voxflow_node_runs (
        call_id TEXT NOT NULL,
        run_key TEXT NOT NULL,
        node_id TEXT NOT NULL,
        asked INTEGER NOT NULL DEFAULT 0,
        no_input INTEGER NOT NULL DEFAULT 0,
        no_match INTEGER NOT NULL DEFAULT 0,
        heard INTEGER NOT NULL DEFAULT 0,
        confidence_sum DOUBLE PRECISION NOT NULL DEFAULT 0,
        PRIMARY KEY (call_id, run_key)
    )""",
    """CREATE TABLE IF NOT EXISTS voxflow_stats_daily (
        flow_id TEXT NOT NULL,
        flow_version TEXT NOT NULL,
        day DOUBLE PRECISION NOT NULL,
        kind TEXT NOT NULL,
        item TEXT NOT NULL,
        calls INTEGER NOT NULL DEFAULT 0,
        ended INTEGER NOT NULL DEFAULT 0,
        visits INTEGER NOT NULL DEFAULT 0,
        asked INTEGER NOT NULL DEFAULT 0,
        no_input INTEGER NOT NULL DEFAULT 0,
        no_match INTEGER NOT NULL DEFAULT 0,
        heard INTEGER NOT NULL DEFAULT 0,
        confidence_sum DOUBLE PRECISION NOT NULL DEFAULT 0,
        PRIMARY KEY (flow_id, flow_version, day, kind, item)
    )""",
)
_COUNTS = ("calls", "ended", "visits", "asked", "no_input", "no_match", "heard", "confidence_sum")
_UPSERT = (
    f"INSERT INTO voxflow_stats_daily (flow_id, flow_version, day, kind, item, "
    f"{', '.join(_COUNTS)}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) "
    "ON CONFLICT (flow_id, flow_version, day, kind, item) DO UPDATE SET "
    + ", ".join(f"{c} = voxflow_stats_daily.{c} + excluded.{c}" for c in _COUNTS)
)


# ---- what one call adds ---------------------------------------------------------


@dataclass(frozen=True)
class NodeRun:
    """How one run of a node went with the caller (written as the node finishes)."""

    node_id: str
    asked: int = 0
    no_input: int = 0
    no_match: int = 0
    heard: int = 0
    confidence_sum: float = 0.0


@dataclass
class Tally:
    """Counts of one node or edge, summed over calls."""

    calls: int = 0
    ended: int = 0
    visits: int = 0
    asked: int = 0
    no_input: int = 0
    no_match: int = 0
    heard: int = 0
    confidence_sum: float = 0.0

    def add(self, other: Tally) -> None:
        for name in _COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in _COUNTS)


def call_tallies(path: Sequence[str], runs: Iterable[NodeRun]) -> dict[tuple[str, str], Tally]:
    """What one ended call adds: per ("node", id) and ("edge", "a>b")."""
    tallies: dict[tuple[str, str], Tally] = {}
    steps = [node for node in path if not node.startswith("~")]
    for node, visits in Counter(steps).items():
        tallies[("node", node)] = Tally(calls=1, visits=visits)
    if steps:
        tallies[("node", steps[-1])].ended = 1
    for pair in {f"{a}{EDGE}{b}" for a, b in zip(steps, steps[1:], strict=False)}:
        tallies[("edge", pair)] = Tally(calls=1)
    for run in runs:
        tally = tallies.setdefault(("node", run.node_id), Tally())
        tally.asked += run.asked
        tally.no_input += run.no_input
        tally.no_match += run.no_match
        tally.heard += run.heard
        tally.confidence_sum += run.confidence_sum
    return tallies


def day_of(started_at: float) -> float:
    return math.floor(started_at / DAY) * DAY


def count_ended_call(
    cur: _Cursor,
    call_id: str,
    flow_id: str | None,
    flow_version: str | None,
    started_at: float | None,
    path: Sequence[str],
) -> None:
    """Add an ended call to the daily roll-up (inside the transaction that ends it)."""
    if not flow_id or started_at is None:
        return
    tallies = call_tallies(path, _runs_of(cur, [call_id]).get(call_id, []))
    rows = [
        (flow_id, flow_version or "", day_of(started_at), kind, item, *tally.values())
        for (kind, item), tally in tallies.items()
    ]
    cur.executemany(_UPSERT, rows)


def _runs_of(cur: _Cursor, call_ids: Sequence[str]) -> dict[str, list[NodeRun]]:
    found: dict[str, list[NodeRun]] = {}
    for start in range(0, len(call_ids), 500):
        chunk = call_ids[start : start + 500]
        cur.execute(
            "SELECT call_id, node_id, asked, no_input, no_match, heard, confidence_sum "
            f"FROM voxflow_node_runs WHERE call_id IN ({', '.join('?' for _ in chunk)})",
            chunk,
        )
        for call_id, *values in cur.all():
            found.setdefault(call_id, []).append(NodeRun(*values))
    return found


def save_node_run(cur: _Cursor, call_id: str, run_key: str, run: NodeRun) -> None:
    """A node run's answers; written again (a retried activity) it replaces itself."""
    cur.execute(
        "INSERT INTO voxflow_node_runs (call_id, run_key, node_id, asked, no_input, no_match, "
        "heard, confidence_sum) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (call_id, run_key) DO "
        "UPDATE SET asked = excluded.asked, no_input = excluded.no_input, "
        "no_match = excluded.no_match, heard = excluded.heard, "
        "confidence_sum = excluded.confidence_sum",
        (call_id, run_key, run.node_id, run.asked, run.no_input, run.no_match, run.heard, run.confidence_sum),
    )


def rebuild(cur: _Cursor) -> int:
    """Count every ended call again from the records (the roll-up emptied first)."""
    cur.execute("DELETE FROM voxflow_stats_daily", ())
    cur.execute(
        "SELECT call_id, flow_id, flow_version, started_at, node_path FROM voxflow_calls "
        f"WHERE {ENDED} AND flow_id IS NOT NULL AND started_at IS NOT NULL",
        (),
    )
    calls = cur.all()
    totals: dict[tuple[str, str, float, str, str], Tally] = {}
    for start in range(0, len(calls), 5000):
        chunk = calls[start : start + 5000]
        runs = _runs_of(cur, [row[0] for row in chunk])
        for call_id, flow_id, version, started_at, path in chunk:
            for (kind, item), tally in call_tallies(_path(path), runs.get(call_id, [])).items():
                key = (flow_id, version or "", day_of(started_at), kind, item)
                totals.setdefault(key, Tally()).add(tally)
    cur.executemany(_UPSERT, [(*key, *tally.values()) for key, tally in totals.items()])
    return len(calls)


# ---- reading ----------------------------------------------------------------------


@dataclass
class NodeStats:
    node_id: str
    reached: int
    ended: int
    visits: int
    reached_share: float
    ended_share: float
    no_input_rate: float | None
    no_match_rate: float | None
    confidence: float | None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class VersionStats:
    flow_id: str
    version: str
    calls: int
    outcomes: dict[str, int]
    rates: dict[str, float]
    duration_p50: float | None
    duration_p95: float | None
    confidence: float | None
    no_input_rate: float | None
    no_match_rate: float | None
    nodes: list[NodeStats] = field(default_factory=list)
    edges: list[dict[str, Any]] = field(default_factory=list)
    first_call: float | None = None
    last_call: float | None = None

    def to_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["nodes"] = [node.to_json() for node in self.nodes]
        return data


@dataclass(frozen=True)
class Window:
    """Which calls: of ``flow_id`` (and ``version``), started at or after ``since``."""

    flow_id: str
    version: str
    since: float | None = None


# Ended calls. Written as "not live" so that no database picks the status index for it
# over the covering voxflow_calls_stats (SQLite did, and read every row of the table).
ENDED = "status NOT IN ('ringing', 'active')"


def _path(text: Any) -> list[str]:
    try:
        value = json.loads(text) if text else []
    except (TypeError, ValueError):
        return []
    return [str(node) for node in value] if isinstance(value, list) else []


def _tenths(dialect: str) -> str:
    # SQLite's CAST truncates; PostgreSQL's rounds, so FLOOR there.
    return (
        "CAST(duration * 10 AS INTEGER)" if dialect == "sqlite" else "CAST(FLOOR(duration * 10) AS INTEGER)"
    )


def version_stats(cur: _Cursor, window: Window, dialect: str) -> VersionStats:
    """Every figure of one flow version over the window."""
    where = "flow_id = ? AND flow_version = ?"
    params: list[Any] = [window.flow_id, window.version]
    if window.since is not None:
        where += " AND started_at >= ?"
        params.append(window.since)
    # Grouped by duration first: grouped by status first, SQLite read the status index.
    cur.execute(
        f"SELECT status, {_tenths(dialect)}, COUNT(*), MIN(started_at), MAX(started_at) "
        f"FROM voxflow_calls WHERE {where} AND {ENDED} "
        f"GROUP BY {_tenths(dialect)}, status",
        params,
    )
    outcomes = {status: 0 for status in OUTCOMES}
    durations: Counter[int] = Counter()
    first: float | None = None
    last: float | None = None
    for status, tenths, count, low, high in cur.all():
        outcomes[status] = outcomes.get(status, 0) + int(count)
        durations[int(tenths or 0)] += int(count)
        first = low if first is None else min(first, low)
        last = high if last is None else max(last, high)
    calls = sum(outcomes.values())
    tallies = _tallies(cur, window)
    nodes = sorted(
        (_node_stats(item, tally, calls) for (kind, item), tally in tallies.items() if kind == "node"),
        key=lambda n: (-n.reached, n.node_id),
    )
    traffic = sorted(
        ((tally.calls, item) for (kind, item), tally in tallies.items() if kind == "edge"),
        key=lambda pair: (-pair[0], pair[1]),
    )
    edges: list[dict[str, Any]] = [
        {
            "source": item.split(EDGE, 1)[0],
            "target": item.split(EDGE, 1)[1],
            "calls": count,
            "share": _share(count, calls),
        }
        for count, item in traffic
    ]
    whole = Tally()
    for (kind, _), tally in tallies.items():
        if kind == "node":
            whole.add(tally)
    return VersionStats(
        flow_id=window.flow_id,
        version=window.version,
        calls=calls,
        outcomes=outcomes,
        rates={status: _share(count, calls) for status, count in outcomes.items()},
        duration_p50=_percentile(durations, 0.50),
        duration_p95=_percentile(durations, 0.95),
        confidence=_ratio(whole.confidence_sum, whole.heard, 3),
        no_input_rate=_ratio(whole.no_input, whole.asked),
        no_match_rate=_ratio(whole.no_match, whole.asked),
        nodes=nodes,
        edges=edges,
        first_call=first,
        last_call=last,
    )


def _tallies(cur: _Cursor, window: Window) -> dict[tuple[str, str], Tally]:
    """Node and edge counts: whole days from the roll-up, a started day from the records."""
    where = "flow_id = ? AND flow_version = ?"
    params: list[Any] = [window.flow_id, window.version]
    edge_of_day: float | None = None
    if window.since is not None:
        edge_of_day = math.ceil(window.since / DAY) * DAY
        where += " AND day >= ?"
        params.append(edge_of_day)
    cur.execute(
        f"SELECT kind, item, {', '.join(f'SUM({c})' for c in _COUNTS)} "
        f"FROM voxflow_stats_daily WHERE {where} GROUP BY kind, item",
        params,
    )
    tallies: dict[tuple[str, str], Tally] = {}
    for kind, item, *values in cur.all():
        tallies[(kind, item)] = Tally(*(v or 0 for v in values))
    if window.since is not None and edge_of_day is not None and edge_of_day > window.since:
        cur.execute(
            "SELECT call_id, node_path FROM voxflow_calls WHERE flow_id = ? AND flow_version = ? "
            f"AND started_at >= ? AND started_at < ? AND {ENDED}",
            (window.flow_id, window.version, window.since, edge_of_day),
        )
        calls = cur.all()
        runs = _runs_of(cur, [row[0] for row in calls])
        for call_id, path in calls:
            for key, tally in call_tallies(_path(path), runs.get(call_id, [])).items():
                tallies.setdefault(key, Tally()).add(tally)
    return tallies


def _node_stats(node_id: str, tally: Tally, calls: int) -> NodeStats:
    return NodeStats(
        node_id=node_id,
        reached=tally.calls,
        ended=tally.ended,
        visits=tally.visits,
        reached_share=_share(tally.calls, calls),
        ended_share=_share(tally.ended, calls),
        no_input_rate=_ratio(tally.no_input, tally.asked),
        no_match_rate=_ratio(tally.no_match, tally.asked),
        confidence=_ratio(tally.confidence_sum, tally.heard, 3),
    )


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _ratio(part: float, whole: float, digits: int = 4) -> float | None:
    return round(part / whole, digits) if whole else None


def _percentile(histogram: Mapping[int, int], fraction: float) -> float | None:
    """Nearest rank: the smallest duration with at least ``fraction`` of the calls at or under it."""
    total = sum(histogram.values())
    if not total:
        return None
    rank = max(1, math.ceil(fraction * total))
    seen = 0
    for tenths in sorted(histogram):
        seen += histogram[tenths]
        if seen >= rank:
            return tenths / 10
    return None  # pragma: no cover - the loop always reaches the total


@dataclass(frozen=True)
class FlowVersion:
    version: str
    calls: int
    last_call: float | None


def flow_versions(cur: _Cursor, flow_id: str, since: float | None) -> list[FlowVersion]:
    """The versions of a flow that ended calls, the most recently called first."""
    where, params = "flow_id = ?", [flow_id]
    if since is not None:
        where += " AND started_at >= ?"
        params.append(since)  # type: ignore[arg-type]
    cur.execute(
        f"SELECT flow_version, COUNT(*), MAX(started_at) FROM voxflow_calls WHERE {where} "
        f"AND {ENDED} GROUP BY flow_version",
        params,
    )
    found = [FlowVersion(str(v or ""), int(n), last) for v, n, last in cur.all()]
    return sorted(found, key=lambda v: (-(v.last_call or 0), v.version))


def flows_summary(cur: _Cursor, since: float | None, dialect: str) -> list[dict[str, Any]]:
    """Every flow that ended calls: calls, endings, p50/p95 duration (all versions)."""
    where, params = f"{ENDED} AND flow_id IS NOT NULL", []
    if since is not None:
        where += " AND started_at >= ?"
        params.append(since)
    cur.execute(
        f"SELECT flow_id, status, {_tenths(dialect)}, COUNT(*) FROM voxflow_calls "
        f"WHERE {where} GROUP BY flow_id, {_tenths(dialect)}, status",
        params,
    )
    flows: dict[str, tuple[Counter[str], Counter[int]]] = {}
    for flow_id, status, tenths, count in cur.all():
        outcomes, durations = flows.setdefault(flow_id, (Counter(), Counter()))
        outcomes[status] += int(count)
        durations[int(tenths or 0)] += int(count)
    summary = []
    for flow_id, (outcomes, durations) in sorted(flows.items()):
        calls = sum(outcomes.values())
        summary.append(
            {
                "flow_id": flow_id,
                "calls": calls,
                "outcomes": {status: outcomes.get(status, 0) for status in OUTCOMES},
                "rates": {status: _share(outcomes.get(status, 0), calls) for status in OUTCOMES},
                "duration_p50": _percentile(durations, 0.5),
                "duration_p95": _percentile(durations, 0.95),
            }
        )
    return summary


# ---- the store's face --------------------------------------------------------------


class StatsReader:
    """Stats over a :class:`~engine.server.records.RecordsStore` (its thread pool, its SQL)."""

    def __init__(self, store: RecordsStore) -> None:
        self.store = store
        self.dialect = "sqlite" if store.url.startswith("sqlite") else "postgresql"

    async def flows(self, since: float | None = None) -> list[dict[str, Any]]:
        return await self.store._run(lambda cur: flows_summary(cur, since, self.dialect))

    async def versions(self, flow_id: str, since: float | None = None) -> list[FlowVersion]:
        return await self.store._run(lambda cur: flow_versions(cur, flow_id, since))

    async def version(self, window: Window) -> VersionStats:
        return await self.store._run(lambda cur: version_stats(cur, window, self.dialect))

    async def compare(
        self, flow_id: str, versions: Sequence[str] = (), since: float | None = None, default_count: int = 2
    ) -> dict[str, Any]:
        """A flow's stats per version: those named (prefixes allowed), else the latest two."""
        known = await self.versions(flow_id, since)
        chosen = (
            [resolve_version(name, known) for name in versions]
            if versions
            else [v.version for v in known[:default_count]]
        )
        stats = [await self.version(Window(flow_id, version, since)) for version in chosen]
        return {
            "flow_id": flow_id,
            "since": since,
            "versions": [s.to_json() for s in stats],
            "known_versions": [
                {"version": v.version, "calls": v.calls, "last_call": v.last_call} for v in known
            ],
        }

    async def rebuild(self) -> int:
        return await self.store._run(rebuild)


class UnknownVersion(ValueError):
    pass


def parse_since(text: str | None, now: float) -> float | None:
    """``7d``, ``24h``, ``90m``, ``1h30m`` ago, or a date (``2026-05-01``, ISO time), as epoch."""
    if text is None or not str(text).strip():
        return None
    value = str(text).strip()
    days = re.fullmatch(r"(\d+(?:\.\d+)?)\s*d", value)
    if days:
        return now - float(days.group(1)) * DAY
    try:
        return now - parse_duration(value)
    except ValueError:
        pass
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"'{value}' is neither a length of time (7d, 24h, 30m) nor a date (2026-05-01, 2026-05-01T09:00)."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def resolve_version(name: str, known: Sequence[FlowVersion]) -> str:
    """A version named in full or by its first characters (as the monitor shows it)."""
    matches = [v.version for v in known if v.version == name or v.version.startswith(name)]
    if len(matches) == 1:
        return matches[0]
    if not matches and len(name) == FULL_VERSION:
        return name  # a version in full that has no calls yet: its figures are zeros
    listed = ", ".join(v.version[:12] for v in known) or "none"
    if not matches:
        raise UnknownVersion(
            f"no calls of the version '{name}' in the records. Versions with calls: {listed}."
        )
    raise UnknownVersion(f"'{name}' is the start of several versions ({listed}); give more of it.")
