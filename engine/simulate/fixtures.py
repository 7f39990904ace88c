"""Fixed answers for nodes that call outside services (http_request, llm, database_query).

A conversation test (or ``voxflow chat --answers FILE``) says what such a
node answers, by node id::

    answers:
      understand: {text: balance}                      # llm: the reply
      lookup: {rows: [{balance: "42.17"}]}             # database_query: the rows
      block_card: {status: 200, body: {blocked: true}} # http_request: status, body, headers
      lookup_caller: {error: "connection refused"}     # any of them: the node fails
      other_node: {outputs: {anything: 1}, exit: next} # any activity node: outputs as given

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
from engine.language.node_contract import NodeResult
from engine.language.registry import calls_outside
from engine.language.templates import TemplateProblem, render_url
from engine.runtime.messages import NodeTask

# Per node type: the shorthand fields of an answer (besides error / outputs / exit).
SHORTHAND_FIELDS: dict[str, tuple[str, ...]] = {
    "http_request": ("status", "body", "headers"),
    "llm": ("text",),
    "database_query": ("rows", "row_count"),
}
GENERIC_FIELDS = ("outputs", "exit")


class FixedFailure(VoxflowError):
    """A fixed ``error`` answer: the node fails, for good, with this message."""


class MissingAnswer(VoxflowError):
    """A conversation test reached an outside-service node it gave no answer for."""


@dataclass(frozen=True)
class FixedAnswer:
    """What one node answers: outputs and an exit, or an error."""

    flow_id: str
    node_id: str
    node_type: str
    outputs: Mapping[str, Any] = field(default_factory=dict)
    exit: str = "next"
    error: str | None = None
    where: str = ""  # file:line of the answer, for messages

    def result(self, task: NodeTask) -> NodeResult:
        if self.error is not None:
            raise FixedFailure(f"{self.error} (a fixed answer{_at(self.where)})")
        status = self.outputs.get("status")
        if self.node_type == "http_request" and isinstance(status, int) and status >= 400:
            # As the plugin does: a status of 400 or more is a failure.
            method = str(task.config.get("method") or "GET")
            raise FixedFailure(f"{method} {_url(task)} answered {status} (a fixed answer{_at(self.where)})")
        return NodeResult(exit=self.exit, outputs=dict(self.outputs))


def answer_from_data(
    data: Mapping[str, Any], flow_id: str, node_id: str, node_type: str, where: str = ""
) -> FixedAnswer:
    """Build an answer from its (already checked) fields; see :func:`answer_problems`."""
    if "error" in data:
        return FixedAnswer(flow_id, node_id, node_type, error=str(data["error"]), where=where)
    exit_name = str(data.get("exit", "next"))
    if "outputs" in data:
        outputs = dict(data["outputs"] or {})
    elif node_type == "http_request":
        outputs = {
            "status": int(data.get("status", 200)),
            "body": data.get("body"),
            "headers": dict(data.get("headers") or {}),
        }
    elif node_type == "llm":
        outputs = {"text": str(data.get("text", "")), "model": "fixed answer"}
    elif node_type == "database_query":
        rows = [dict(row) for row in data.get("rows") or []]
        first = rows[0] if rows else {}
        outputs = {**first, "rows": rows, "row_count": int(data.get("row_count", len(rows)))}
    else:
        outputs = {}
    return FixedAnswer(flow_id, node_id, node_type, outputs, exit_name, where=where)


def answer_problems(data: Any, node_type: str, exits: tuple[str, ...]) -> list[tuple[str, str]]:
    """What is wrong with an answer for a node of ``node_type``: (field, message) pairs."""
    if not isinstance(data, Mapping):
        return [("", "an answer is a set of 'name: value' lines, e.g. {text: balance}.")]
    allowed = (*SHORTHAND_FIELDS.get(node_type, ()), *GENERIC_FIELDS, "error")
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
    shorthand = [key for key in data if key in SHORTHAND_FIELDS.get(node_type, ())]
    if "outputs" in data and shorthand:
        problems.append(("outputs", f"give either 'outputs' or {_listed(shorthand)}, not both."))
    if "outputs" in data and not isinstance(data["outputs"], Mapping):
        problems.append(("outputs", "'outputs' is a set of 'name: value' lines."))
    if "exit" in data and str(data["exit"]) not in exits:
        problems.append(("exit", f"this node has no exit '{data['exit']}'; its exits are {_listed(exits)}."))
    if node_type == "http_request":
        status = data.get("status", 200)
        if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
            problems.append(("status", "'status' is an HTTP status code such as 200 or 503."))
        if "headers" in data and not isinstance(data["headers"], Mapping):
            problems.append(("headers", "'headers' is a set of 'name: value' lines."))
    if node_type == "database_query" and "rows" in data:
        rows = data["rows"]
        if not isinstance(rows, list) or not all(isinstance(row, Mapping) for row in rows):
            problems.append(
                (
                    "rows",
                    "'rows' is a list of rows, each a set of 'column: value' lines, e.g. [{balance: 42.17}].",
                )
            )
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

    def answer(self, task: NodeTask) -> NodeResult | None:
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
        return fixed.result(task)


def _example(node_type: str) -> str:
    return {
        "http_request": "{status: 200, body: {...}}",
        "llm": "{text: ...}",
        "database_query": "{rows: [{column: value}]}",
    }.get(node_type, "{outputs: {...}}")


def _url(task: NodeTask) -> str:
    url = task.config.get("url", "")
    try:
        return render_url(str(url), task.variables)
    except TemplateProblem:
        return str(url)


def _at(where: str) -> str:
    return f" in {where}" if where else ""


def _listed(names: tuple[str, ...] | list[str]) -> str:
    quoted = [f"'{name}'" for name in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
