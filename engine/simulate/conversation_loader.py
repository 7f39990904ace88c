"""Reading conversation test files: JSON Schema first, then every check against the flows.

Every problem becomes a :class:`~engine.core.errors.Diagnostic` with the file,
line, column and document path (``tests[0].turns[2].press``) and a hint, so
a broken test file reads like a broken flow file. The format is described
in engine.simulate.conversation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from engine.core.errors import Diagnostic, VoxflowError
from engine.core.suggest import as_sentence, did_you_mean, quoted_list
from engine.language.compile import FlowGraph
from engine.language.duration import parse_duration
from engine.language.load import LoadedDocument, load_file
from engine.language.registry import awaited_signal, calls_outside
from engine.language.sourcemap import DocPath, format_path
from engine.language.validate import schema_diagnostics
from engine.simulate.caller import NoAnswer, ScriptAction
from engine.simulate.conversation import (
    DEFAULT_CALLER,
    DEFAULT_TIMEOUT,
    AgentTurn,
    CallerTurn,
    ConversationTest,
    Expectations,
    SignalTurn,
    Turn,
    flow_named,
    flows_of,
    node_refs,
    resolve_node,
)
from engine.simulate.conversation_schema import ANSWERS_FILE_SCHEMA, FILE_SCHEMA
from engine.simulate.fixtures import FixedAnswer, answer_from_data, answer_problems
from engine.voice.simulated_agent import HangUp, Press, Say, Silence

TEST_SUFFIXES = (".test.yaml", ".test.yml")
AGENT_KINDS = ("agent", "agent_contains", "agent_matches")
# Turn kind → the other fields it may have.
TURN_FIELDS: dict[str, tuple[str, ...]] = {
    "agent": (),
    "agent_contains": (),
    "agent_matches": (),
    "caller": ("confidence", "barge_in"),
    "press": ("barge_in", "gap"),
    "silence": (),
    "signal": ("payload",),
}
WORD_TURNS = ("no_answer", "hangup")
_KEYS = re.compile(r"^[0-9*#]+$")


def find_test_files(paths: Iterable[str | Path]) -> list[Path]:
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.name.endswith(TEST_SUFFIXES) and p.is_file())
        elif path.is_file():
            found.append(path)
        else:
            raise VoxflowError(f"{raw}: no such file or folder.")
    return found


def flow_folder(test_file: Path) -> Path:
    """Where a test file's flows are: beside it, or one up from a 'tests' folder."""
    folder = test_file.parent
    return folder.parent if folder.name == "tests" else folder


def load_tests(path: Path, flows: Mapping[str, FlowGraph]) -> list[ConversationTest]:
    """Every test of one file; a VoxflowError with every problem found, if any."""
    document = load_file(path)
    diagnostics = schema_diagnostics(document, FILE_SCHEMA, kind="conversation test")
    # Tests whose shape is right are checked further, so one run shows every problem.
    broken = {match.group(1) for d in diagnostics if (match := re.match(r"tests\[(\d+)\]", d.path))}
    whole_file = any(not d.path.startswith("tests[") for d in diagnostics)
    tests: list[ConversationTest | None] = []
    if not whole_file:
        reader = _Reader(document, flows)
        top_flow = document.data.get("flow")
        if top_flow is not None:
            graph = reader.graph(top_flow, ("flow",), ())
            if graph is not None:  # the file's answers, even if every test is broken
                reader.answers(graph, node_refs(graph), (), {})
        tests = [
            reader.test(index, data)
            for index, data in enumerate(document.data["tests"])
            if str(index) not in broken
        ]
        unique = {(d.line, d.column, d.message): d for d in diagnostics + reader.problems}
        diagnostics = sorted(unique.values(), key=lambda d: (d.line, d.column))
    if diagnostics:
        raise VoxflowError.from_diagnostics(diagnostics, {document.file: document.text})
    return [test for test in tests if test is not None]


class _Reader:
    """Builds tests from checked data, collecting every problem as a diagnostic."""

    def __init__(self, document: LoadedDocument, flows: Mapping[str, FlowGraph]) -> None:
        self.document = document
        self.flows = flows
        self.problems: list[Diagnostic] = []
        self.top: Mapping[str, Any] = document.data

    def problem(self, path: DocPath, message: str, hint: str = "", on_key: bool = False) -> None:
        line, column = self.document.source_map.locate(path, at_key=on_key)
        self.problems.append(
            Diagnostic(
                self.document.file, line, column, format_path(path), message, hint, code="conversation-test"
            )
        )

    def line(self, path: DocPath) -> int:
        return self.document.source_map.locate(path)[0]

    def test(self, index: int, data: Mapping[str, Any]) -> ConversationTest | None:
        here: DocPath = ("tests", index)
        before = len(self.problems)
        flow_id = data.get("flow", self.top.get("flow"))
        graph = self.graph(flow_id, here + ("flow",) if "flow" in data else ("flow",), here)
        if graph is None:
            return None
        refs = node_refs(graph)
        self._variables(
            graph,
            (("variables",), self.top.get("variables") or {}),
            (here + ("variables",), data.get("variables") or {}),
        )
        answers = self.answers(graph, refs, here, data)
        turns = tuple(
            t
            for i, turn in enumerate(data["turns"])
            if (t := self._turn(turn, here + ("turns", i), graph)) is not None
        )
        expect = self._expect(data.get("expect") or {}, here + ("expect",), graph, refs)
        if len(self.problems) > before:
            return None
        return ConversationTest(
            name=data["name"],
            file=self.document.file,
            line=self.line(here + ("name",)),
            flow_id=graph.flow_id,
            caller=str(data.get("caller", self.top.get("caller", DEFAULT_CALLER))),
            called=str(data.get("called", self.top.get("called", ""))),
            variables={**(self.top.get("variables") or {}), **(data.get("variables") or {})},
            answers=answers,
            failing_transfers=tuple(data.get("failing_transfers", self.top.get("failing_transfers", ()))),
            turns=turns,
            expect=expect,
            timeout=float(data.get("timeout", DEFAULT_TIMEOUT)),
        )

    def _variables(self, graph: FlowGraph, *given: tuple[DocPath, Mapping[str, Any]]) -> None:
        """Only the flow's own variables can be set: a misspelt one would be silently ignored."""
        for where, values in given:
            for name in values:
                if name not in graph.variables:
                    known = sorted(graph.variables)
                    tip = did_you_mean(str(name), known)
                    self.problem(
                        where + (name,),
                        f"the flow '{graph.flow_id}' has no variable '{name}'.",
                        as_sentence(tip)
                        if tip
                        else (
                            f"Its variables: {quoted_list(known)}." if known else "It declares no variables."
                        ),
                        on_key=True,
                    )

    def graph(self, flow_id: Any, path: DocPath, test: DocPath) -> FlowGraph | None:
        if flow_id is None:
            self.problem(
                test + ("name",),
                "this test does not say which flow it calls.",
                "Add 'flow: <flow name>' at the top of the file, or to the test.",
            )
            return None
        graph = self.flows.get(str(flow_id))
        if graph is None:
            hint = as_sentence(did_you_mean(str(flow_id), self.flows)) or (
                f"Known flows: {quoted_list(sorted(self.flows))}."
            )
            self.problem(path, f"no flow named '{flow_id}'.", hint)
        return graph

    # ---- answers ---------------------------------------------------------

    def answers(
        self, graph: FlowGraph, refs: Mapping[str, tuple[str, str]], test: DocPath, data: Mapping[str, Any]
    ) -> dict[tuple[str, str], FixedAnswer]:
        answers: dict[tuple[str, str], FixedAnswer] = {}
        for where, given in (
            (("answers",), self.top.get("answers") or {}),
            (test + ("answers",), data.get("answers") or {}),
        ):
            for key, value in given.items():
                answer = self.answer(graph, refs, where + (key,), str(key), value)
                if answer is not None:
                    answers[(answer.flow_id, answer.node_id)] = answer
        return answers

    def answer(
        self, graph: FlowGraph, refs: Mapping[str, tuple[str, str]], path: DocPath, key: str, value: Any
    ) -> FixedAnswer | None:
        target = resolve_node(key, graph, refs)
        if isinstance(target, str):
            self.problem(path, target, _node_hint(key, refs), on_key=True)
            return None
        flow_id, node_id = target
        node = flow_named(graph, flow_id).nodes[node_id]
        if not calls_outside(node.type):
            self.problem(
                path,
                f"'{key}' is a {node.type} node; only nodes that call an outside "
                "service (a web API, a model, a database, ...) take fixed answers.",
                "Remove this answer; the test's turns decide what voice nodes get.",
                on_key=True,
            )
            return None
        exits = tuple(e.name for e in node.exits)
        for field_name, message in answer_problems(value, node.type, exits, node.config):
            self.problem(path + ((field_name,) if field_name else ()), message, on_key=bool(field_name))
        where = f"{self.document.file}:{self.line(path)}"
        return answer_from_data(value, flow_id, node_id, node.type, where)

    # ---- turns -----------------------------------------------------------

    def _turn(self, data: Any, path: DocPath, graph: FlowGraph) -> Turn | None:
        line = self.line(path)
        if isinstance(data, str):
            if data in WORD_TURNS:
                action: ScriptAction = NoAnswer() if data == "no_answer" else HangUp()
                return CallerTurn(action, data, line)
            suggestion = did_you_mean(data, WORD_TURNS)
            self.problem(
                path,
                f"'{data}' is not a turn.",
                as_sentence(suggestion)
                if suggestion
                else "Write '- no_answer', '- hangup', or a turn with a value such as "
                "'- caller: my balance please'.",
            )
            return None
        kinds = [key for key in data if key in TURN_FIELDS]
        unknown = [
            key for key in data if key not in TURN_FIELDS and not any(key in TURN_FIELDS[k] for k in kinds)
        ]
        for key in unknown:
            allowed = [*TURN_FIELDS, *(f for k in kinds for f in TURN_FIELDS[k])]
            tip = did_you_mean(str(key), allowed)
            self.problem(
                path + (key,),
                f"'{key}' is not part of a turn" + (f" of kind '{kinds[0]}'." if kinds else "."),
                as_sentence(tip)
                if tip
                else f"A turn is one of {quoted_list(TURN_FIELDS)}, or '- no_answer' / '- hangup'.",
                on_key=True,
            )
        if unknown:
            return None
        if len(kinds) != 1:
            message = (
                "this turn has none of " + quoted_list(TURN_FIELDS) + "."
                if not kinds
                else f"this turn is both {quoted_list(kinds)}; write one per line."
            )
            self.problem(path, message, "Each '- ' line is one turn.")
            return None
        kind = kinds[0]
        value = data[kind]
        if kind in AGENT_KINDS:
            return self._agent_turn(kind, value, path + (kind,), line)
        if kind == "signal":
            return self._signal_turn(data, path, graph, line)
        return self._caller_turn(kind, data, path, line)

    def _agent_turn(self, kind: str, value: Any, path: DocPath, line: int) -> AgentTurn | None:
        if not isinstance(value, str) or not value.strip():
            self.problem(path, f"'{kind}' needs the text the agent says.")
            return None
        mode = {"agent": "says", "agent_contains": "contains", "agent_matches": "matches"}[kind]
        if mode == "matches":
            try:
                re.compile(value)
            except re.error as error:
                self.problem(
                    path,
                    f"this is not a regular expression voxflow can read: {error}.",
                    "Write \\ before characters meant literally, such as \\$ or \\.; or use agent_contains.",
                )
                return None
        return AgentTurn(mode, value, line)

    def _caller_turn(self, kind: str, data: Mapping[str, Any], path: DocPath, line: int) -> CallerTurn | None:
        value = data[kind]
        barge_in = data.get("barge_in", False)
        if not isinstance(barge_in, bool):
            self.problem(path + ("barge_in",), "'barge_in' is true or false.")
            return None
        if kind == "caller":
            if not isinstance(value, str) or not value.strip():
                self.problem(
                    path + (kind,),
                    "'caller' needs the words the caller says.",
                    "To say nothing, write '- no_answer' or '- silence: 7'.",
                )
                return None
            confidence = data.get("confidence", 0.95)
            if (
                isinstance(confidence, bool)
                or not isinstance(confidence, (int, float))
                or not (0 <= confidence <= 1)
            ):
                self.problem(
                    path + ("confidence",),
                    "'confidence' is a number from 0 to 1.",
                    "Below the flow's low_confidence_threshold (0.5 by default) the "
                    "words count as not understood.",
                )
                return None
            return CallerTurn(Say(value, float(confidence), barge_in), value, line)
        if kind == "press":
            keys = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
            if not _KEYS.match(keys):
                self.problem(
                    path + (kind,),
                    f"'press' takes phone keys (0-9, * and #), not {value!r}.",
                    'Write the keys in quotes: press: "1234#".',
                )
                return None
            gap = data.get("gap", 0.0)
            if isinstance(gap, bool) or not isinstance(gap, (int, float)) or gap < 0:
                self.problem(path + ("gap",), "'gap' is the number of seconds between keys.")
                return None
            return CallerTurn(Press(keys, barge_in, float(gap)), f"presses {keys}", line)
        try:
            seconds = parse_duration(value)
        except (ValueError, TypeError):
            seconds = -1.0
        if seconds <= 0:
            self.problem(
                path + (kind,),
                f"'silence' is a length of time, such as 7 or 7s, not {value!r}.",
                "To leave one question unanswered, whatever its timeout, write '- no_answer'.",
            )
            return None
        return CallerTurn(Silence(seconds), f"silence {seconds:g} s", line)

    def _signal_turn(
        self, data: Mapping[str, Any], path: DocPath, graph: FlowGraph, line: int
    ) -> SignalTurn | None:
        name = data["signal"]
        waited = sorted(
            {
                signal
                for flow in flows_of(graph)
                for node in flow.nodes.values()
                if (signal := awaited_signal(node.type, node.config)) is not None
            }
        )
        if not isinstance(name, str) or name not in waited:
            hint = as_sentence(did_you_mean(str(name), waited)) or (
                f"The flow waits for {quoted_list(waited)}."
                if waited
                else "No node of this flow waits for a signal."
            )
            self.problem(path + ("signal",), f"the flow never waits for a signal named '{name}'.", hint)
            return None
        return SignalTurn(name, data.get("payload"), line)

    # ---- expectations ------------------------------------------------------

    def _expect(
        self, data: Mapping[str, Any], path: DocPath, graph: FlowGraph, refs: Mapping[str, tuple[str, str]]
    ) -> Expectations:
        for name in ("path", "reached", "not_reached"):
            for index, key in enumerate(data.get(name) or ()):
                found = (
                    (key if key in graph.nodes else None)
                    if name == "path"
                    else (key if not isinstance(resolve_node(key, graph, refs), str) else None)
                )
                if found is None:
                    hint = (
                        _node_hint(key, {k: v for k, v in refs.items() if "/" not in k})
                        if name == "path"
                        else _node_hint(key, refs)
                    )
                    where = f"the flow '{graph.flow_id}'" if name == "path" else "these flows"
                    self.problem(path + (name, index), f"'{key}' is not a node of {where}.", hint)
        path_value = data.get("path")
        return Expectations(
            status=data.get("status"),
            reason_contains=data.get("reason_contains"),
            path=tuple(path_value) if path_value is not None else None,
            reached=tuple(data.get("reached") or ()),
            not_reached=tuple(data.get("not_reached") or ()),
            variables=dict(data.get("variables") or {}),
            transferred_to=data.get("transferred_to"),
            hung_up=data.get("hung_up"),
        )


def _node_hint(key: str, refs: Mapping[str, tuple[str, str]]) -> str:
    suggestion = did_you_mean(key, refs)
    return (
        as_sentence(suggestion)
        if suggestion
        else (
            "Write a node id as it appears under 'nodes:' in the flow, or flow/node for a node "
            "of a flow it calls."
        )
    )


def load_answers_file(path: Path, graph: FlowGraph) -> dict[tuple[str, str], FixedAnswer]:
    """``voxflow chat --answers FILE``: a mapping of node id → answer, checked like a test's."""
    document = load_file(path)
    diagnostics = schema_diagnostics(document, ANSWERS_FILE_SCHEMA, kind="answers")
    if diagnostics:
        raise VoxflowError.from_diagnostics(diagnostics, {document.file: document.text})
    reader = _Reader(document, {graph.flow_id: graph})
    refs = node_refs(graph)
    answers: dict[tuple[str, str], FixedAnswer] = {}
    for key, value in document.data.items():
        answer = reader.answer(graph, refs, (key,), str(key), value)
        if answer is not None:
            answers[(answer.flow_id, answer.node_id)] = answer
    if reader.problems:
        raise VoxflowError.from_diagnostics(reader.problems, {document.file: document.text})
    return answers
