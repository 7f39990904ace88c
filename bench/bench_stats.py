"""``voxflow stats`` over 1,000,000 generated call records on SQLite, beside a naive baseline.

Generates calls of a bank flow (two versions, a year of starts, endings and
paths drawn at random with a fixed seed), writes them to a SQLite file as the
records store keeps them (calls, node runs, the daily roll-up), then times,
alternating in this one process:

- stats: what ``voxflow stats account-balance --version A --version B`` reads
  (endings, p50/p95 duration, per-node reached/ended/no-input/no-match/
  confidence, edges), for both versions, and once more ``--since`` a time
  that is not at midnight (whole days from the roll-up, the rest from records);
- baseline: the same per-node "reached" and "ended" counts the naive way,
  reading every record's node path (SQLite's json_each), as stats would
  without the roll-up.

The target is stats under 2 s; the ratio to the baseline is what we track.

    python -m bench.bench_stats [--calls 1000000] [--rounds 3] [--db PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.server import analytics
from engine.server.records import open_records

TARGET_SECONDS = 2.0
FLOW = "account-balance"
VERSIONS = ("a1" * 32, "b2" * 32)
YEAR = 365 * 24 * 3600.0
START = 1_767_225_600.0  # 2026-01-01


def generated_calls(count: int, seed: int = 7) -> Iterator[tuple[Any, ...]]:
    """(call row, node runs): call paths through account-balance's nodes, two versions."""
    rng = random.Random(seed)
    for index in range(count):
        version = VERSIONS[index % 2]
        started = START + rng.random() * YEAR
        path = ["greet", "ask"]
        asked, no_input, no_match, heard, confidence = 1, 0, 0, 0, 0.0
        roll = rng.random()
        if roll < 0.08:
            status = "user_hangup"
        elif roll < 0.15:
            no_input = 2
            asked = 2
            path.append("goodbye")
            status = "completed"
        else:
            heard = 1
            confidence = round(0.5 + rng.random() / 2, 2)
            if rng.random() < 0.1:
                no_match, asked, heard = 1, 2, 2
                confidence += 0.3
            path += ["understand", "route"]
            if rng.random() < (0.25 if version == VERSIONS[0] else 0.15):
                path.append("transfer")
                status = "transferred"
            elif rng.random() < 0.02:
                status = "failed"
            else:
                path += ["lookup", "tell", "goodbye"]
                status = "completed" if rng.random() > 0.03 else "user_hangup"
        duration = round(rng.uniform(5, 240), 3)
        call_id = f"c{index:08d}"
        yield (
            (
                call_id,
                "v3:" + call_id,
                "+15551234567",
                "+15551230001",
                FLOW,
                version,
                status,
                "",
                started,
                started,
                started + duration,
                duration,
                None,
                json.dumps(path),
                "{}",
                "[]",
                None,
                started + duration,
            ),
            analytics.NodeRun("ask", asked, no_input, no_match, heard, confidence),
        )


def build(db: Path, count: int) -> float:
    """Write ``count`` calls as the store keeps them; seconds taken."""
    began = time.perf_counter()
    store = open_records(f"sqlite:///{db}")
    asyncio.run(_create(store))
    connection = sqlite3.connect(db)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=OFF")
    totals: dict[tuple[str, str, float, str, str], analytics.Tally] = {}
    batch: list[tuple[Any, ...]] = []
    runs: list[tuple[Any, ...]] = []
    for row, run in generated_calls(count):
        batch.append(row)
        runs.append(
            (
                row[0],
                "2:ask",
                run.node_id,
                run.asked,
                run.no_input,
                run.no_match,
                run.heard,
                run.confidence_sum,
            )
        )
        day = analytics.day_of(row[8])
        for (kind, item), tally in analytics.call_tallies(json.loads(row[13]), [run]).items():
            totals.setdefault((FLOW, row[5], day, kind, item), analytics.Tally()).add(tally)
        if len(batch) >= 50_000:
            _flush(connection, batch, runs)
    _flush(connection, batch, runs)
    connection.executemany(
        "INSERT INTO voxflow_stats_daily VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [(*key, *tally.values()) for key, tally in totals.items()],
    )
    connection.commit()
    connection.execute("ANALYZE")
    connection.close()
    return time.perf_counter() - began


async def _create(store: Any) -> None:
    await store.open()
    await store.close()


def _flush(connection: sqlite3.Connection, batch: list[tuple[Any, ...]], runs: list[tuple[Any, ...]]) -> None:
    connection.executemany(f"INSERT INTO voxflow_calls VALUES ({','.join('?' * 18)})", batch)
    connection.executemany("INSERT INTO voxflow_node_runs VALUES (?,?,?,?,?,?,?,?)", runs)
    batch.clear()
    runs.clear()


async def stats_once(url: str, since: float) -> list[dict[str, Any]]:
    store = await open_records(url).open()
    try:
        reader = analytics.StatsReader(store)
        both = await reader.compare(FLOW, [VERSIONS[0][:12], VERSIONS[1][:12]])
        recent = await reader.compare(FLOW, [VERSIONS[1][:12]], since=since)
        return [*both["versions"], *recent["versions"]]
    finally:
        await store.close()


def baseline_once(db: Path) -> dict[tuple[str, str], tuple[int, int]]:
    """Per (version, node): calls that reached it and that ended there, from every node path."""
    connection = sqlite3.connect(db)
    try:
        reached = connection.execute(
            "SELECT c.flow_version, j.value, COUNT(DISTINCT c.call_id) FROM voxflow_calls c, "
            "json_each(c.node_path) j WHERE c.flow_id = ? AND c.status IN ('completed', "
            "'user_hangup', 'timeout', 'failed', 'transferred') GROUP BY c.flow_version, j.value",
            (FLOW,),
        ).fetchall()
        ended = connection.execute(
            "SELECT flow_version, json_extract(node_path, '$[#-1]'), COUNT(*) FROM voxflow_calls "
            "WHERE flow_id = ? GROUP BY 1, 2",
            (FLOW,),
        ).fetchall()
    finally:
        connection.close()
    ends = {(v, n): c for v, n, c in ended}
    return {(v, n): (c, ends.get((v, n), 0)) for v, n, c in reached}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--db", type=Path, help="keep the generated database here")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="voxflow-bench-stats-"))
    db = args.db or folder / "calls.db"
    if not db.exists():
        print(f"generating {args.calls:,} call records in {db} ...", flush=True)
        print(f"  written in {build(db, args.calls):.1f} s", flush=True)
    url = f"sqlite:///{db}"
    since = START + YEAR - 30 * 24 * 3600 + 1234.5  # the last 30 days, not at midnight
    stats_times, baseline_times = [], []
    result: list[dict[str, Any]] = []
    expected: dict[tuple[str, str], tuple[int, int]] = {}
    for _ in range(args.rounds):
        began = time.perf_counter()
        result = asyncio.run(stats_once(url, since))
        stats_times.append(time.perf_counter() - began)
        began = time.perf_counter()
        expected = baseline_once(db)
        baseline_times.append(time.perf_counter() - began)
    for version in result[:2]:  # the two answers agree, node by node
        for node in version["nodes"]:
            want = expected[(version["version"], node["node_id"])]
            assert (node["reached"], node["ended"]) == want, (node, want)
    calls = sum(v["calls"] for v in result[:2])
    stats_s, base_s = statistics.median(stats_times), statistics.median(baseline_times)
    print(
        f"calls counted: {calls:,} (two versions), then {result[2]['calls']:,} since "
        f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(since))} UTC"
    )
    print(
        f"stats (2 versions + --since), median of {args.rounds}: {stats_s:.3f} s "
        f"(target < {TARGET_SECONDS:g} s)"
    )
    print(f"baseline (node reach from every path by json_each): {base_s:.3f} s")
    print(f"ratio stats/baseline: {stats_s / base_s:.3f}")
    return 0 if stats_s < TARGET_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
