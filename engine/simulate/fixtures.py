"""Fixed answers for nodes that call outside services.

A conversation test (or ``voxflow chat --answers FILE``) says what such a
node answers, by node id::

    answers:
      understand: {text: balance}                      # a node's short form (its ANSWER_FIELDS)
      lookup: {rows: [{balance: "42.17"}]}
      block_card: {status: 200, body: {blocked: true}}
      lookup_caller: {error: "connection refused"}     # any of them: the node fails
      other_node: {outputs: {anything: 1}, exit: next} # any activity node: outputs as given

A node type that calls an outside service may give its answers a short form
(engine.plugin_api: ``ANSWER_FIELDS`` and ``simulated_outputs``, which turns
the fields a test wrote into the node's outputs, or fails as that answer would);
``outputs:`` and ``exit:`` work for every node, ``error:`` fails any.

The worker is started with a :class:`FixedAnswerTable` (see
engine.runtime.services.FixedAnswers); its ``run_node`` activity asks the
table before running a plugin. Answers are registered per call, so
concurrent tests each get their own. A fixed ``error`` fails the node at
once (retrying would get the same answer), so the flow takes its
``on_error`` exit just as when the service is down.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.core.errors import VoxflowError
from engine.core.suggest import closest
from engine.language.node_contract import AnswerProblem, NodeResult
from engine.language.registry import GENERIC_ANSWER_FIELDS, calls_outside, installed
from engine.runtime.messages import NodeTask


class FixedFailure(VoxflowError):
    """A fixed ``error`` answer: the node fails, for good, with this message."""


class MissingAnswer(VoxflowError):
    """A conversation test reached an outside-service node it gave no answer for."""


@dataclass(frozen=True)
class FixedAnswer:
    """What one node answers: its outputs in full, its short form, or an error; and an exit."""

    flow_id: str
    node_id: str
    node_type: str
    outputs: Mapping[str, Any] | None = None  # given in full (``outputs:``)
    fields: Mapping[str, Any] = field(default_factory=dict)  # the short form (ANSWER_FIELDS)
    exit: str = "next"
    error: str | None = None
    where: str = ""  # file:line of the answer, for messages

    def result(self, config: Mapping[str, Any]) -> NodeResult:
        """The node's result; ``config`` is the node's config with its templates filled in."""
        if self.error is not None:
            raise FixedFailure(f"{self.error} (a fixed answer{_at(self.where)})")
        if self.outputs is not None:
            return NodeResult(exit=self.exit, outputs=dict(self.outputs))
        node_type = installed(self.node_type)
        simulate = node_type.simulated_outputs if node_type is not None else None
        if simulate is None:
            return NodeResult(exit=self.exit)
        try:
            outputs = simulate(self.fields, config)
        except Exception as error:  # the plugin's words: this answer fails the node, as a real one would
            text = str(error).strip() or type(error).__name__
            raise FixedFailure(f"{text} (a fixed answer{_at(self.where)})") from None
        return NodeResult(exit=self.exit, outputs=dict(outputs))


def answer_from_data(
    data: Mapping[str, Any], flow_id: str, node_id: str, node_type: str, where: str = ""
) -> FixedAnswer:
    """Build an answer from its (already checked) fields; see :func:`answer_problems`."""
    if "error" in data:
        return FixedAnswer(flow_id, node_id, node_type, error=str(data["error"]), where=where)
    exit_name = str(data.get("exit", "next"))
    outputs = dict(data["outputs"] or {}) if "outputs" in data else None
    fields = {key: value for key, value in data.items() if key not in GENERIC_ANSWER_FIELDS}
    return FixedAnswer(flow_id, node_id, node_type, outputs, fields, exit_name, where=where)


def answer_problems(
    data: Any, node_type: str, exits: tuple[str, ...], config: Mapping[str, Any] | None = None
) -> list[tuple[str, str]]:
    """What is wrong with an answer for a node of ``node_type``: (field, message) pairs.

    ``config`` is the node's config as written: the plugin's ``simulated_outputs`` checks
    the short form's values with it (an answer that fails the node is not a problem here).
    """
    if not isinstance(data, Mapping):
        return [("", "an answer is a set of 'name: value' lines, e.g. {outputs: {...}}.")]
    found = installed(node_type)
    short_form = tuple(found.answer_fields) if found is not None else ()
    allowed = (*short_form, *GENERIC_ANSWER_FIELDS)
    problems: list[tuple[str, str]] = []
    for key in data:
        if key not in allowed:
            close = closest(str(key), allowed)
            problems.append(
                (
                    str(key),
                    f"'{key}' is not part of an answer for a {node_type} "
                    "node; " + (f"did you mean '{close}'?" if close else f"use {_listed(allowed)}."),
                )
            )
    if "error" in data and len(data) > 1:
        problems.append(("error", "an answer with 'error' fails the node, so it has no other fields."))
    given = {key: data[key] for key in data if key in short_form}
    if "outputs" in data and given:
        problems.append(("outputs", f"give either 'outputs' or {_listed(list(given))}, not both."))
    if "outputs" in data and not isinstance(data["outputs"], Mapping):
        problems.append(("outputs", "'outputs' is a set of 'name: value' lines."))
    if "exit" in data and str(data["exit"]) not in exits:
        problems.append(("exit", f"this node has no exit '{data['exit']}'; its exits are {_listed(exits)}."))
    if found is not None and found.simulated_outputs is not None and not problems and "outputs" not in data:
        try:
            found.simulated_outputs(given, config or {})
        except AnswerProblem as problem:
            problems.append((problem.field, problem.message))
        except Exception:  # noqa: S110 - an answer that fails the node: what the test asked for
            pass
    return problems


@dataclass
class CallAnswers:
    """The fixed answers of one call, by (flow id, node id)."""

    answers: dict[tuple[str, str], FixedAnswer] = field(default_factory=dict)
    # Conversation tests: an outside-service node without an answer is an error.
    strict: bool = False
    used: set[tuple[str, str]] = field(default_factory=set)


class FixedAnswerTable:
    """The worker's table of fixed answers, per call (thread-safe: the worker may use threads)."""

    def __init__(self) -> None:
        self._calls: dict[str, CallAnswers] = {}
        self._lock = threading.Lock()

    def register(self, call_id: str, answers: CallAnswers) -> None:
        with self._lock:
            self._calls[call_id] = answers

    def forget(self, call_id: str) -> None:
        with self._lock:
            self._calls.pop(call_id, None)

    def answer(self, task: NodeTask, config: Mapping[str, Any]) -> NodeResult | None:
        """engine.runtime.services.FixedAnswers: a fixed result, None to run the plugin."""
        with self._lock:
            call = self._calls.get(task.call_id)
        if call is None:
            return None
        key = (task.flow_id, task.node_id)
        fixed = call.answers.get(key)
        if fixed is None:
            if call.strict and calls_outside(task.node_type):
                raise MissingAnswer(
                    f"this test gives no fixed answer for it, and conversation tests do not "
                    f"call outside services. Add one under 'answers:', e.g. "
                    f"{task.node_id}: {_example(task.node_type)}"
                )
            return None
        call.used.add(key)
        return fixed.result(config)


def _example(node_type: str) -> str:
    found = installed(node_type)
    if found is None or not found.answer_fields:
        return "{outputs: {...}}"
    return "{" + ", ".join(f"{name}: ..." for name in found.answer_fields) + "}"


def _at(where: str) -> str:
    return f" in {where}" if where else ""


def _listed(names: tuple[str, ...] | list[str]) -> str:
    quoted = [f"'{name}'" for name in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
