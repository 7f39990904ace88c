"""``voxflow test [PATHS]``: run the conversation tests written beside the flows.

Finds ``*.test.yaml`` files under PATHS (default ``flows/``), checks them
against the flows (problems are shown with file:line:column, like flow
problems), runs every test as a call on the real engine (an embedded
Temporal dev server unless TEMPORAL_ADDRESS is set, a worker, a voice bus,
a scripted caller), prints PASS or FAIL with what was expected and what
happened, then the nodes and exits of each flow that no test reached.
Exit code 1 when a test fails. The format is described in
engine/simulate/conversation.py and docs/trying-flows.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from engine.core.errors import Diagnostic, VoxflowError
from engine.core.output import Painter
from engine.language.compile import FlowGraph
from engine.language.project import compile_paths
from engine.simulate import coverage
from engine.simulate.conversation import ConversationTest
from engine.simulate.conversation_loader import find_test_files, flow_folder, load_tests
from engine.simulate.logs import default_log_file, logs_in_file
from engine.simulate.report import print_coverage, print_result
from engine.simulate.runner import DEFAULT_CONCURRENCY, VOICE_SCALE, TestResult, run_tests
from engine.simulate.session import BUS_KINDS, EngineOptions, SimulatorEngine, exit_on_interrupt
from engine.voice.clock import ScaledClock

HELP = "Run the conversation tests beside the flows (flows/tests/*.test.yaml)."
DEFAULT_PATH = "flows"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="*",
        default=[DEFAULT_PATH],
        metavar="PATH",
        help=f"test files, or folders to search for *.test.yaml (default {DEFAULT_PATH}/)",
    )
    parser.add_argument(
        "-k", dest="pattern", metavar="TEXT", help="run only the tests whose name contains TEXT"
    )
    parser.add_argument(
        "--bus",
        choices=BUS_KINDS,
        default="memory",
        help="the voice bus: in memory (default), or Redis (REDIS_URL, else an embedded redis-server)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"how many tests run at once (default {DEFAULT_CONCURRENCY})",
    )
    parser.add_argument(
        "--no-coverage", action="store_true", help="do not print which nodes and exits no test reached"
    )
    parser.add_argument(
        "--from-call",
        metavar="CALL_ID",
        help="first write a test that replays this recorded call (beside its flow, in PATH), then run it",
    )
    parser.add_argument(
        "--mask",
        action="store_true",
        help="with --from-call: mask personal data (phone numbers, long numbers, free speech)",
    )
    parser.add_argument(
        "--records",
        metavar="URL",
        help="with --from-call: the call records (default VOXFLOW_RECORDS_URL, "
        "else sqlite:///.voxflow/calls.db, voxflow dev's)",
    )


def run(args: argparse.Namespace) -> int:
    if args.mask and not args.from_call:
        raise VoxflowError("--mask goes with --from-call CALL_ID.")
    if args.from_call:
        args.paths = [from_call(args.from_call, args.paths, args.records, args.mask)]
    tests, flows = collect(args.paths, args.pattern)
    began = time.monotonic()
    with logs_in_file(default_log_file("test")) as log:
        results = asyncio.run(_run(tests, flows, args.bus, max(1, args.concurrency)))
    paint = Painter(sys.stdout)
    if not args.no_coverage:
        table = coverage.measure(flows, [r.trace for r in results if r.trace])
        if args.pattern or not all(Path(path).is_dir() for path in args.paths):
            # Test files named one by one, or some tests picked with -k: the flows those
            # tests call only, not every flow beside them at 0%.
            tested = {test.flow_id for test in tests}
            table = [row for row in table if row.tests or row.flow_id in tested]
        print_coverage(table, sys.stdout)
        print()
    failed = [r for r in results if not r.passed]
    summary = f"{len(results) - len(failed)} passed, {len(failed)} failed"
    colour = "red" if failed else "green"
    print(
        paint(f"{summary} in {time.monotonic() - began:.1f} s", colour, "bold")
        + paint(f"  (engine log: {log})", "dim")
    )
    return 1 if failed else 0


def from_call(call_id: str, paths: list[str], records: str | None, mask: bool) -> str:
    """Write the test of a recorded call beside its flow; the test file's path."""
    import os

    from engine.server.records import DEFAULT_URL, open_records
    from engine.simulate.from_call import export_call

    folders = [p for p in paths if Path(p).is_dir()] or [DEFAULT_PATH]
    flows = compile_paths(folders).flows
    url = records or os.environ.get("VOXFLOW_RECORDS_URL") or DEFAULT_URL
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).exists():
        raise VoxflowError(
            f"no call records at {url[len('sqlite:///') :]}: run this where "
            "voxflow dev or voxflow serve records calls, or give --records URL."
        )

    async def export() -> Any:
        store = await open_records(url).open()
        try:
            return await export_call(store, call_id, flows, mask=mask)
        finally:
            await store.close()

    exported = asyncio.run(export())
    paint = Painter(sys.stdout)
    print(paint(f"Wrote {exported.path}", "bold") + f" (the call {call_id} as a test).")
    if exported.flow_changed:
        print(
            paint(
                f"The flow '{exported.flow_id}' changed since this call (version "
                f"{exported.call_version[:12]} → {exported.flow_version[:12]}): the test "
                "shows where the call would now go another way.",
                "yellow",
            )
        )
    print()
    return str(exported.path)


def collect(paths: list[str], pattern: str | None) -> tuple[list[ConversationTest], dict[str, FlowGraph]]:
    """The tests under ``paths`` and the flows they call; every problem at once."""
    files = find_test_files(paths)
    if not files:
        raise VoxflowError(
            f"no conversation tests found in {', '.join(paths)}. Write them in files named "
            "<flow>.test.yaml in a 'tests' folder beside the flows, e.g. "
            "flows/tests/account-balance.test.yaml."
        )
    folders = sorted({str(flow_folder(path)) for path in files})
    flows = compile_paths(folders).flows
    tests: list[ConversationTest] = []
    diagnostics: list[Diagnostic] = []
    sources: dict[str, str] = {}
    for path in files:
        try:
            tests += load_tests(path, flows)
        except VoxflowError as error:
            diagnostics += error.diagnostics or [Diagnostic(str(path), 0, 0, "", error.message)]
            sources.update(error.sources)
    if diagnostics:
        raise VoxflowError.from_diagnostics(diagnostics, sources)
    if pattern:
        tests = [t for t in tests if pattern.lower() in t.name.lower()]
        if not tests:
            raise VoxflowError(f"no test name contains '{pattern}'.")
    return tests, flows


async def _run(
    tests: list[ConversationTest], flows: dict[str, FlowGraph], bus: str, concurrency: int
) -> list[TestResult]:
    paint = Painter(sys.stdout)
    files = len({t.file for t in tests})
    options = EngineOptions(bus=bus, clock=ScaledClock(VOICE_SCALE))
    async with SimulatorEngine(options) as engine:
        exit_on_interrupt(engine, lambda: print("Interrupted.", file=sys.stderr))
        print(
            paint(
                f"Running {_count(len(tests), 'conversation test')} from "
                f"{_count(files, 'file')} on {engine.where}.",
                "bold",
            )
        )
        print()
        return await run_tests(
            engine,
            tests,
            flows,
            concurrency=concurrency,
            on_result=lambda result: print_result(result, sys.stdout),
        )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


if __name__ == "__main__":  # pragma: no cover - `voxflow test` is the entry point
    from engine.cli.main import main

    sys.exit(main(["test", *sys.argv[1:]]))
