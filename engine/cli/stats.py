"""``voxflow stats [FLOW]``: what callers actually do, from the call records.

Without FLOW: every flow's calls, endings and durations. With FLOW: per
version (the two most recently called, or those named with ``--version``,
side by side, so a change shows before and after): calls, how they ended,
p50/p95 duration, no-input and no-match rates, recognition confidence, and
for every node the share of calls that reached it and that ended there.
The records are ``VOXFLOW_RECORDS_URL`` (``voxflow dev``'s .voxflow/calls.db
by default). The figures are engine.server.analytics's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

from engine.core.errors import VoxflowError
from engine.core.output import Painter
from engine.server.analytics import OUTCOMES, StatsReader, UnknownVersion, parse_since
from engine.server.records import DEFAULT_URL, open_records

HELP = "Call analytics from the call records: endings, durations, where callers drop off."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("flow", nargs="?", metavar="FLOW", help="a flow id (default: every flow)")
    parser.add_argument(
        "--since", metavar="WHEN", help="only calls started since: 7d, 24h, 30m ago, or a date (2026-05-01)"
    )
    parser.add_argument(
        "--version",
        action="append",
        default=[],
        metavar="VERSION",
        help="a flow version (its first characters are enough); give it twice "
        "to compare two versions (default: the two most recently called)",
    )
    parser.add_argument(
        "--format", choices=("text", "json"), default="text", help="text for people (default) or json"
    )
    parser.add_argument(
        "--records", metavar="URL", help=f"the call records (default VOXFLOW_RECORDS_URL, else {DEFAULT_URL})"
    )
    parser.add_argument(
        "--rebuild",
        action="store_true",
        help="count every ended call again into the daily roll-up first "
        "(records written before voxflow kept it)",
    )


def run(args: argparse.Namespace) -> int:
    if args.version and not args.flow:
        raise VoxflowError("--version needs a flow: voxflow stats FLOW --version VERSION.")
    try:
        since = parse_since(args.since, time.time())
    except ValueError as error:
        raise VoxflowError(f"--since: {error}") from None
    url = args.records or os.environ.get("VOXFLOW_RECORDS_URL") or DEFAULT_URL
    data = asyncio.run(_read(url, args.flow, args.version, since, args.rebuild))
    if args.format == "json":
        print(json.dumps(data, indent=2))
    elif args.flow:
        print_flow(data, Painter(sys.stdout))
    else:
        print_flows(data, Painter(sys.stdout))
    return 0


async def _read(
    url: str, flow: str | None, versions: list[str], since: float | None, rebuild: bool
) -> dict[str, Any]:
    if url.startswith("sqlite:///") and not url.endswith(":memory:"):
        path = url[len("sqlite:///") :]
        if not os.path.exists(path):
            raise VoxflowError(
                f"no call records at {path}: calls are recorded by voxflow dev "
                "or voxflow serve. Run this where they run, or give --records "
                "URL (or VOXFLOW_RECORDS_URL)."
            )
    store = await open_records(url).open()
    try:
        reader = StatsReader(store)
        if rebuild:
            await reader.rebuild()
        if flow is None:
            return {"since": since, "flows": await reader.flows(since)}
        try:
            return await reader.compare(flow, versions, since)
        except UnknownVersion as error:
            raise VoxflowError(str(error)) from None
    finally:
        await store.close()


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _secs(value: float | None) -> str:
    return "—" if value is None else f"{value:g} s"


def print_flows(data: dict[str, Any], paint: Painter) -> None:
    flows = data["flows"]
    if not flows:
        print("No ended calls in the records" + (" in that time." if data["since"] else "."))
        return
    header = ["flow", "calls", *OUTCOMES, "p50", "p95"]
    rows = [
        [
            f["flow_id"],
            str(f["calls"]),
            *(_pct(f["rates"][o]) for o in OUTCOMES),
            _secs(f["duration_p50"]),
            _secs(f["duration_p95"]),
        ]
        for f in flows
    ]
    _table(header, rows, paint)


def print_flow(data: dict[str, Any], paint: Painter) -> None:
    versions = data["versions"]
    flow = data["flow_id"]
    if not versions:
        print(
            f"No ended calls of the flow '{flow}' in the records"
            + (" in that time." if data["since"] else ".")
        )
        return
    names = [v["version"][:12] for v in versions]
    print(paint(f"{flow}", "bold") + "  " + (" vs ".join(names) if len(names) > 1 else f"version {names[0]}"))
    print()
    rows = [["calls", *(str(v["calls"]) for v in versions)]]
    rows += [
        [o.replace("_", " "), *(f"{_pct(v['rates'][o])} ({v['outcomes'][o]})" for v in versions)]
        for o in OUTCOMES
    ]
    rows += [
        ["duration p50", *(_secs(v["duration_p50"]) for v in versions)],
        ["duration p95", *(_secs(v["duration_p95"]) for v in versions)],
        ["no-input rate", *(_pct(v["no_input_rate"]) for v in versions)],
        ["no-match rate", *(_pct(v["no_match_rate"]) for v in versions)],
        ["confidence", *("—" if v["confidence"] is None else f"{v['confidence']:.2f}" for v in versions)],
    ]
    _table(["", *names], rows, paint)
    print()
    print(paint("Nodes: % of calls that reached it / ended there (drop-off)", "bold"))
    order: list[str] = []
    for version in versions:
        order += [n["node_id"] for n in version["nodes"] if n["node_id"] not in order]
    by_version = [{n["node_id"]: n for n in v["nodes"]} for v in versions]
    node_rows = []
    for node_id in order:
        cells = []
        for nodes in by_version:
            node = nodes.get(node_id)
            if node is None:
                cells.append("—")
                continue
            extra = []
            if node["no_input_rate"]:
                extra.append(f"no-input {_pct(node['no_input_rate'])}")
            if node["no_match_rate"]:
                extra.append(f"no-match {_pct(node['no_match_rate'])}")
            if node["confidence"] is not None:
                extra.append(f"conf {node['confidence']:.2f}")
            cells.append(
                f"{_pct(node['reached_share'])} / {_pct(node['ended_share'])}"
                + (f"  ({', '.join(extra)})" if extra else "")
            )
        node_rows.append([node_id, *cells])
    _table(["node", *names], node_rows, paint)


def _table(header: list[str], rows: list[list[str]], paint: Painter) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    print(paint("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip(), "dim"))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


if __name__ == "__main__":  # pragma: no cover - `voxflow stats` is the entry point
    from engine.cli.main import main

    sys.exit(main(["stats", *sys.argv[1:]]))
