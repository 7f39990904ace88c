"""Call analytics computed on a hand-made set of calls equal the figures worked out by hand.

The calls are written through the records store as the worker writes them
(start, node runs, end), on SQLite and, when VOXFLOW_TEST_POSTGRES_URL is set,
on PostgreSQL. Then ``voxflow stats`` and the API read them.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from engine.cli.main import main
from engine.server.analytics import NodeRun, StatsReader, Window, parse_since
from engine.server.records import RecordsStore, open_records

D0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC
D1 = D0 + 86_400
V1, V2 = "a" * 64, "b" * 64
PATH = ["greet", "ask", "lookup", "tell", "bye"]

# call, version, start, duration, status, path, runs of 'ask' (asked, no_input, no_match,
# heard, confidence_sum)
CALLS: list[tuple[str, str, float, float, str, list[str], list[tuple[Any, ...]]]] = [
    ("c1", V1, D0 + 100, 30.0, "completed", PATH, [(1, 0, 0, 1, 0.9)]),
    ("c2", V1, D0 + 200, 12.5, "user_hangup", ["greet", "ask"], [(2, 1, 0, 1, 0.5)]),
    (
        "c3",
        V1,
        D1 + 3600,
        61.2,
        "transferred",
        ["greet", "ask", "ask", "transfer"],
        [(1, 0, 1, 1, 0.3), (1, 0, 0, 1, 0.7)],
    ),
    ("c4", V1, D1 + 7200, 5.0, "failed", ["greet", "ask", "lookup"], [(1, 0, 0, 1, 0.8)]),
    ("c5", V2, D1 + 100, 20.0, "completed", PATH, [(1, 0, 0, 1, 1.0)]),
    ("c6", V2, D1 + 200, 40.0, "completed", PATH, [(1, 0, 0, 1, 0.6)]),
]


def _urls(tmp_path: Path) -> list[str]:
    urls = [f"sqlite:///{tmp_path / 'calls.db'}"]
    if os.environ.get("VOXFLOW_TEST_POSTGRES_URL"):
        urls.append(os.environ["VOXFLOW_TEST_POSTGRES_URL"])
    return urls


async def _write(store: RecordsStore, flow: str) -> None:
    for call, version, start, duration, status, path, runs in CALLS:
        await store.call_started(call + flow, flow_id=flow, flow_version=version, call={}, answered_at=start)
        for index, run in enumerate(runs):
            await store.node_run(call + flow, f"call-{call}/{index + 2}:ask", NodeRun("ask", *run))
            # A retried activity writes its run again: replaced, not added.
            await store.node_run(call + flow, f"call-{call}/{index + 2}:ask", NodeRun("ask", *run))
        for _ in range(2):  # a retried end is counted once
            await store.call_ended(
                call + flow,
                status=status,
                reason="",
                variables={},
                path=path,
                events=[],
                ended_at=start + duration,
            )
    # A call still going is no figure yet.
    await store.call_started("live" + flow, flow_id=flow, flow_version=V1, call={}, answered_at=D1 + 50)


def _node(stats: dict[str, Any], node_id: str) -> dict[str, Any]:
    return next(n for n in stats["nodes"] if n["node_id"] == node_id)


def _check_all_time(v1: dict[str, Any], v2: dict[str, Any]) -> None:
    assert v1["version"] == V1 and v1["calls"] == 4
    assert v1["outcomes"] == {"completed": 1, "transferred": 1, "user_hangup": 1, "failed": 1, "timeout": 0}
    assert v1["rates"] == {
        "completed": 0.25,
        "transferred": 0.25,
        "user_hangup": 0.25,
        "failed": 0.25,
        "timeout": 0.0,
    }
    assert (v1["duration_p50"], v1["duration_p95"]) == (12.5, 61.2)
    reach = {n["node_id"]: (n["reached"], n["ended"], n["visits"]) for n in v1["nodes"]}
    assert reach == {
        "greet": (4, 0, 4),
        "ask": (4, 1, 5),
        "lookup": (2, 1, 2),
        "tell": (1, 0, 1),
        "bye": (1, 1, 1),
        "transfer": (1, 1, 1),
    }
    ask = _node(v1, "ask")
    assert (ask["reached_share"], ask["ended_share"]) == (1.0, 0.25)
    assert (ask["no_input_rate"], ask["no_match_rate"], ask["confidence"]) == (0.1667, 0.1667, 0.64)
    assert _node(v1, "greet")["no_input_rate"] is None
    assert (v1["no_input_rate"], v1["no_match_rate"], v1["confidence"]) == (0.1667, 0.1667, 0.64)
    edges = {(e["source"], e["target"]): e["calls"] for e in v1["edges"]}
    assert edges == {
        ("greet", "ask"): 4,
        ("ask", "lookup"): 2,
        ("lookup", "tell"): 1,
        ("tell", "bye"): 1,
        ("ask", "ask"): 1,
        ("ask", "transfer"): 1,
    }
    assert v2["calls"] == 2 and v2["rates"]["completed"] == 1.0
    assert (v2["duration_p50"], v2["duration_p95"]) == (20.0, 40.0)
    assert _node(v2, "bye")["ended_share"] == 1.0 and _node(v2, "ask")["confidence"] == 0.8


def _check_day_two(v1: dict[str, Any]) -> None:
    """Since the second day (at midnight, or at 00:30): c3 and c4 only."""
    assert v1["calls"] == 2 and v1["outcomes"]["transferred"] == 1
    assert v1["outcomes"]["failed"] == 1
    assert (v1["duration_p50"], v1["duration_p95"]) == (5.0, 61.2)
    reach = {n["node_id"]: (n["reached"], n["ended"]) for n in v1["nodes"]}
    assert reach == {"greet": (2, 0), "ask": (2, 0), "lookup": (1, 1), "transfer": (1, 1)}
    ask = _node(v1, "ask")
    assert (ask["no_input_rate"], ask["no_match_rate"], ask["confidence"]) == (0.0, 0.3333, 0.6)


def test_stats_equal_the_figures_worked_out_by_hand(tmp_path: Path) -> None:
    async def scenario(url: str) -> None:
        flow = f"bank-{uuid.uuid4().hex[:8]}"  # PostgreSQL keeps rows between runs
        store = await open_records(url).open()
        try:
            await _write(store, flow)
            reader = StatsReader(store)
            both = await reader.compare(flow)  # the two most recently called versions
            assert [v["version"] for v in both["versions"]] == [V1, V2]
            _check_all_time(*both["versions"])
            for since in (D1, D1 + 1800):  # whole days from the roll-up; a started day too
                _check_day_two(await _as_json(reader.version(Window(flow, V1, since))))
            # Counted again from the records, the roll-up gives the same figures.
            assert await reader.rebuild() >= len(CALLS)
            _check_all_time(*(await reader.compare(flow, ["aaaa", "bbbb"]))["versions"])
            summary = next(f for f in await reader.flows() if f["flow_id"] == flow)
            assert summary["calls"] == 6 and summary["outcomes"]["completed"] == 3
            assert (summary["duration_p50"], summary["duration_p95"]) == (20.0, 61.2)
        finally:
            await _forget(store, flow)
            await store.close()

    for url in _urls(tmp_path):
        asyncio.run(scenario(url))


async def _forget(store: RecordsStore, flow: str) -> None:
    """PostgreSQL's database is shared with the other tests: leave it as it was."""

    def work(cur: Any) -> None:
        cur.execute(
            "DELETE FROM voxflow_node_runs WHERE call_id IN (SELECT call_id FROM "
            "voxflow_calls WHERE flow_id = ?)",
            (flow,),
        )
        cur.execute("DELETE FROM voxflow_stats_daily WHERE flow_id = ?", (flow,))
        cur.execute("DELETE FROM voxflow_calls WHERE flow_id = ?", (flow,))

    await store._run(work)


async def _as_json(stats: Any) -> dict[str, Any]:
    return dict((await stats).to_json())


def test_voxflow_stats_prints_versions_side_by_side(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'calls.db'}"

    async def write() -> None:
        store = await open_records(url).open()
        await _write(store, "bank")
        await store.close()

    asyncio.run(write())
    assert main(["stats", "bank", "--records", url, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    _check_all_time(*data["versions"])
    assert main(["stats", "bank", "--records", url, "--version", V2[:6]]) == 0
    text = capsys.readouterr().out
    assert "version bbbbbbbbbbbb" in text and "100.0% / 100.0%" in text  # bye, in V2
    assert main(["stats", "bank", "--records", url]) == 0
    text = capsys.readouterr().out
    assert "aaaaaaaaaaaa vs bbbbbbbbbbbb" in text
    ask = next(line for line in text.splitlines() if line.startswith("ask "))
    assert "100.0% / 25.0%" in ask and "no-input 16.7%" in ask and "conf 0.64" in ask
    assert main(["stats", "--records", url]) == 0
    assert "bank" in capsys.readouterr().out
    assert main(["stats", "bank", "--records", url, "--version", "c0ffee"]) == 1
    assert "no calls of the version 'c0ffee'" in capsys.readouterr().err
    assert main(["stats", "--records", url, "--since", "last tuesday"]) == 1
    assert "neither a length of time" in capsys.readouterr().err
    assert main(["stats", "--records", f"sqlite:///{tmp_path / 'none.db'}"]) == 1
    assert "no call records at" in capsys.readouterr().err


def test_since_reads_lengths_of_time_and_dates() -> None:
    now = D1
    assert parse_since("7d", now) == now - 7 * 86_400
    assert parse_since("90m", now) == now - 5400
    assert parse_since("2026-01-01", now) == D0
    assert parse_since(None, now) is None
