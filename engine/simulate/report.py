"""Printing conversation test results and coverage for people."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from engine.core.output import Painter
from engine.simulate.coverage import FlowCoverage, describe_exit
from engine.simulate.runner import TestResult

TRANSCRIPT_LINES = 30  # the end of a long conversation is what explains a failure


def print_result(result: TestResult, stream: TextIO) -> None:
    paint = Painter(stream)
    test = result.test
    mark = paint("PASS", "green", "bold") if result.passed else paint("FAIL", "red", "bold")
    took = paint(f"({result.seconds:.1f} s)", "dim")
    print(f"{mark}  {test.name}  {paint(test.where, 'dim')} {took}", file=stream)
    if result.passed:
        return
    for problem in result.problems:
        first, *more = problem.splitlines()
        print(f"      {paint('✗', 'red')} {first}", file=stream)
        for text in more:
            print(f"      {text}", file=stream)
    outcome = result.outcome
    if outcome.transcript:
        print(f"      {paint('the conversation:', 'bold')}", file=stream)
        shown = outcome.transcript[-TRANSCRIPT_LINES:]
        if len(shown) < len(outcome.transcript):
            print(f"        {paint('...', 'dim')}", file=stream)
        for line in shown:
            who = "agent" if line.speaker == "agent" else "caller"
            cut = paint(" (cut off)", "dim") if line.interrupted else ""
            print(
                f"        {paint(who + ':', 'cyan' if who == 'agent' else 'yellow')} "
                f"{line.text.strip()}{cut}",
                file=stream,
            )
    if outcome.trace is not None:
        print(f"      {paint('path:', 'bold')} {outcome.trace.root.describe()}", file=stream)
        for event in outcome.trace.all_events():
            if event.kind == "node_failed":
                print(f"      {paint('node failed:', 'bold')} {event.message}", file=stream)
    if outcome.result is not None:
        print(
            f"      {paint('ended:', 'bold')} {outcome.result.status} — {outcome.result.reason}", file=stream
        )
    print(file=stream)


def print_coverage(table: Sequence[FlowCoverage], stream: TextIO) -> None:
    paint = Painter(stream)
    print(paint("Coverage: the nodes and exits of each flow that the tests reached", "bold"), file=stream)
    width = max((len(row.flow_id) for row in table), default=4)
    print(f"  {'flow':<{width}}  {'nodes':>12}  {'exits':>12}  tests", file=stream)
    for row in table:
        node_part = _fraction(row.nodes_reached, len(row.nodes))
        exit_part = _fraction(row.exits_taken, len(row.possible_exits))
        colour = "green" if not row.missed_nodes and not row.missed_exits else "yellow"
        print(
            f"  {paint(f'{row.flow_id:<{width}}', colour)}  {node_part:>12}  {exit_part:>12}  {row.tests}",
            file=stream,
        )
        for node in row.missed_nodes:
            print(f"    {paint('node not reached:', 'yellow')} {node}", file=stream)
        for node, exit_ in row.missed_exits:
            print(f"    {paint('exit not taken:', 'yellow')} {describe_exit(node, exit_)}", file=stream)
        for node, exit_ in row.exits:
            why = row.impossible.get((node, exit_.name))
            if why is not None:
                print(
                    f"    {paint('exit no call can take:', 'dim')} {describe_exit(node, exit_)} ({why})",
                    file=stream,
                )
    nodes = sum(len(row.nodes) for row in table)
    exits = sum(len(row.possible_exits) for row in table)
    reached = sum(row.nodes_reached for row in table)
    taken = sum(row.exits_taken for row in table)
    print(f"  {'all':<{width}}  {_fraction(reached, nodes):>12}  {_fraction(taken, exits):>12}", file=stream)


def _fraction(part: int, whole: int) -> str:
    percent = 100.0 if whole == 0 else 100.0 * part / whole
    return f"{part}/{whole} {percent:3.0f}%"
