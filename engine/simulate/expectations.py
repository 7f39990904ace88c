"""Comparing what a call did with what its conversation test expects, in plain words.

Turns are matched in order against the call's transcript. An agent turn
must match one of the things the agent said after the previous turn and
before the caller's next action (other agent lines in between are not
checked); a caller turn must have happened. Each problem is one readable
"expected ..., but ..." message; the runner adds the transcript and path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.runtime import messages as m
from engine.simulate.caller import NoAnswer
from engine.simulate.conversation import (
    AgentTurn,
    CallerTurn,
    ConversationTest,
    SignalTurn,
    node_refs,
    resolve_node,
)
from engine.simulate.trace import CallTrace
from engine.voice.messages import Command, Hangup, Transfer
from engine.voice.simulated_agent import HangUp, Line, Press, Say, Silence

MISSING_ANSWER_WORDS = "gives no fixed answer for it"


@dataclass
class CallOutcome:
    """Everything known about a finished (or abandoned) test call."""

    result: m.CallResult | None
    trace: CallTrace | None
    transcript: list[Line]
    commands: list[Command]
    problems: list[str] = field(default_factory=list)  # found while running it


def check(test: ConversationTest, outcome: CallOutcome) -> list[str]:
    """Every way the call differs from the test; empty when it passed."""
    problems = list(outcome.problems)
    if outcome.trace is not None:
        for event in outcome.trace.all_events():
            if event.kind == "node_failed" and MISSING_ANSWER_WORDS in event.message:
                problems.append(event.message)
    problems += check_turns(test, outcome.transcript)
    if outcome.result is not None and outcome.trace is not None:
        problems += _check_expectations(test, outcome.result, outcome.trace, outcome.commands)
    return problems


def check_turns(test: ConversationTest, transcript: Sequence[Line]) -> list[str]:
    position = 0
    last_caller = "the call began"
    for number, turn in enumerate(test.turns, start=1):
        where = f"turn {number} (line {turn.line})"
        if isinstance(turn, AgentTurn):
            end = _next_caller_line(transcript, position)
            for index in range(position, end):
                if turn.accepts(transcript[index].text):
                    position = index + 1
                    break
            else:
                said = [line.text for line in transcript[position:end]]
                heard = "nothing more" if not said else "\n".join(f'    "{text}"' for text in said)
                until = (
                    ""
                    if end >= len(transcript)
                    else f" (before the caller's {_caller_words(transcript[end])})"
                )
                return [
                    f"{where}: expected the agent to {turn.describe()}\n"
                    f"  but after {last_caller}, the agent said{until}:"
                    + (f" {heard}" if not said else f"\n{heard}")
                ]
        elif isinstance(turn, CallerTurn):
            for _ in range(_caller_lines(turn)):
                index = _next_caller_line(transcript, position)
                if index >= len(transcript):
                    return [
                        f"{where}: the caller never got to {_turn_words(turn)}: the call "
                        f"ended first (after {last_caller})."
                    ]
                position = index + 1
            if _caller_lines(turn):
                last_caller = f"the caller {_turn_words(turn, past=True)}"
    return []


def _next_caller_line(transcript: Sequence[Line], start: int) -> int:
    for index in range(start, len(transcript)):
        if transcript[index].speaker == "caller":
            return index
    return len(transcript)


def _caller_lines(turn: CallerTurn) -> int:
    action = turn.action
    if isinstance(action, Press):
        return len(action.keys)
    return 1 if isinstance(action, (Say, HangUp)) else 0


def _turn_words(turn: CallerTurn, past: bool = False) -> str:
    action = turn.action
    if isinstance(action, Say):
        return f'{"said" if past else "say"} "{action.text}"'
    if isinstance(action, Press):
        return f"{'pressed' if past else 'press'} {action.keys}"
    if isinstance(action, HangUp):
        return "hung up" if past else "hang up"
    if isinstance(action, Silence):
        return f"{'stayed' if past else 'stay'} silent for {action.seconds:g} s"
    assert isinstance(action, NoAnswer)
    return "left a question unanswered" if past else "leave a question unanswered"


def _caller_words(line: Line) -> str:
    return line.text.strip("[]") if line.text.startswith("[") else f'"{line.text}"'


def _check_expectations(
    test: ConversationTest, result: m.CallResult, trace: CallTrace, commands: Sequence[Command]
) -> list[str]:
    expect = test.expect
    problems: list[str] = []
    if expect.status is not None and result.status != expect.status:
        problems.append(
            f"expected the call to end as {expect.status}, but it ended as {result.status}: {result.reason}"
        )
    if expect.reason_contains and expect.reason_contains.lower() not in result.reason.lower():
        problems.append(
            f"expected the reason the call ended to contain "
            f'"{expect.reason_contains}", but it was: {result.reason}'
        )
    own_path = trace.runs[0].path if trace.runs else result.path
    if expect.path is not None and tuple(own_path) != expect.path:
        problems.append(
            "expected the path:\n    "
            + " → ".join(expect.path)
            + "\n  but the call went:\n    "
            + (" → ".join(own_path) or "(nowhere)")
        )
    if expect.reached or expect.not_reached:
        graph_refs = node_refs(trace.graph)
        visited = {(run.flow_id, node) for run in trace.runs for node in run.path}
        for key in expect.reached:
            target = resolve_node(key, trace.graph, graph_refs)
            if not isinstance(target, str) and target not in visited:
                problems.append(f"expected the call to reach '{key}', but it never did")
        for key in expect.not_reached:
            target = resolve_node(key, trace.graph, graph_refs)
            if not isinstance(target, str) and target in visited:
                problems.append(f"expected the call not to reach '{key}', but it did")
    for name, wanted in expect.variables.items():
        if name not in result.variables:
            problems.append(f"expected the variable '{name}' to be {_show(wanted)}, but it was never set")
            continue
        difference = _difference(wanted, result.variables[name], name)
        if difference:
            problems.append(difference)
    transfers = [c.destination for c in commands if isinstance(c, Transfer)]
    if expect.transferred_to is not None and expect.transferred_to not in transfers:
        got = "no transfer" if not transfers else "a transfer to " + " and to ".join(transfers)
        problems.append(f"expected a transfer to {expect.transferred_to}, but there was {got}")
    if expect.hung_up is not None:
        hung_up = any(isinstance(c, Hangup) for c in commands)
        if hung_up != expect.hung_up:
            problems.append(
                "expected the flow to hang up, but it did not"
                if expect.hung_up
                else "expected the flow not to hang up, but it did"
            )
    return problems


def _difference(wanted: Any, actual: Any, name: str) -> str:
    """'' when ``actual`` has everything ``wanted`` says (mappings: the keys written)."""
    if isinstance(wanted, Mapping) and isinstance(actual, Mapping):
        for key, value in wanted.items():
            if key not in actual:
                return f"expected '{name}.{key}' to be {_show(value)}, but '{name}' has no '{key}'"
            difference = _difference(value, actual[key], f"{name}.{key}")
            if difference:
                return difference
        return ""
    if isinstance(wanted, list) and isinstance(actual, list) and len(wanted) == len(actual):
        for index, (one, other) in enumerate(zip(wanted, actual, strict=True)):
            difference = _difference(one, other, f"{name}[{index}]")
            if difference:
                return difference
        return ""
    if isinstance(wanted, bool) or isinstance(actual, bool):
        same = isinstance(wanted, bool) and isinstance(actual, bool) and wanted == actual
    else:
        same = wanted == actual  # 42 and 42.0 are the same number
    if same:
        return ""
    return f"expected '{name}' to be {_show(wanted)}, but it was {_show(actual)}"


def _show(value: Any) -> str:
    shown = json.dumps(value, ensure_ascii=False, default=str)
    kind = {
        str: "text",
        bool: "true/false",
        int: "a number",
        float: "a number",
        type(None): "empty",
        list: "a list",
        dict: "a mapping",
    }.get(type(value), "")
    return f"{shown} ({kind})" if kind else shown


__all__ = ["CallOutcome", "SignalTurn", "check", "check_turns"]
