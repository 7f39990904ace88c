"""Conversation tests: a YAML file of calls, each a list of turns and what must come of it.

``flows/tests/account-balance.test.yaml``::

    flow: account-balance             # the flow the tests call (a test may name another)
    caller: "+15551234567"            # optional defaults for every test below
    tests:
      - name: asks for the balance by voice
        variables: {caller_name: Sam}
        answers:                      # fixed answers of outside services, by node id
          understand: {text: balance}
          lookup: {rows: [{balance: "42.17"}]}
        turns:
          - agent: Hello Sam! Welcome to Acme Bank.     # exactly (spacing aside)
          - agent_contains: balance                     # ignoring case
          - caller: my balance please                   # optional: confidence, barge_in
          - agent_matches: 'balance is \\$42\\.\\d\\d'   # a regular expression
        expect:
          status: completed
          path: [greet, ask, understand, route, lookup, tell, goodbye]
          variables: {account: {balance: "42.17"}}

Turns: ``agent`` / ``agent_contains`` / ``agent_matches`` (what the agent
says next, before the caller's next turn); ``caller`` (words; ``confidence``,
``barge_in``); ``press`` (keys, ``"1234#"``; ``barge_in``, ``gap``);
``silence`` (seconds, or "7s"); ``no_answer`` (the caller does not answer the
question asked, so the flow's no-input timeout passes); ``hangup``;
``signal`` (a named signal for a node waiting for one, with ``payload``).

Expectations (``expect``): ``status``, ``reason_contains``, ``path`` (the
test's flow, exactly), ``reached`` / ``not_reached`` (``node`` or
``flow/node`` for a node of a subflow), ``variables`` (those named, compared
as far as they are written), ``transferred_to``, ``hung_up``.

Loading (engine.simulate.conversation_loader) checks everything against
the flows, and reports problems as diagnostics with file:line:column and a
hint, like flow files. The user's guide is docs/trying-flows.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from engine.language.compile import FlowGraph
from engine.simulate.caller import ScriptAction
from engine.simulate.fixtures import FixedAnswer

DEFAULT_TIMEOUT = 60.0
DEFAULT_CALLER = "+15551234567"


@dataclass(frozen=True)
class AgentTurn:
    """What the agent says next: ``mode`` is says (exactly), contains or matches."""

    mode: str
    text: str
    line: int

    def accepts(self, said: str) -> bool:
        heard = normalise(said)
        if self.mode == "says":
            return heard == normalise(self.text)
        if self.mode == "contains":
            return normalise(self.text).lower() in heard.lower()
        return re.search(self.text, heard) is not None

    def describe(self) -> str:
        how = {"says": "say", "contains": "say something containing", "matches": "say something matching"}[
            self.mode
        ]
        return f'{how} "{self.text}"'


@dataclass(frozen=True)
class CallerTurn:
    action: ScriptAction
    text: str  # as written, for messages
    line: int


@dataclass(frozen=True)
class SignalTurn:
    name: str
    payload: Any
    line: int


Turn: TypeAlias = AgentTurn | CallerTurn | SignalTurn


@dataclass(frozen=True)
class Expectations:
    status: str | None = None
    reason_contains: str | None = None
    path: tuple[str, ...] | None = None
    reached: tuple[str, ...] = ()
    not_reached: tuple[str, ...] = ()
    variables: Mapping[str, Any] = field(default_factory=dict)
    transferred_to: str | None = None
    hung_up: bool | None = None


@dataclass(frozen=True)
class ConversationTest:
    name: str
    file: str
    line: int
    flow_id: str
    caller: str
    called: str
    variables: Mapping[str, Any]
    answers: Mapping[tuple[str, str], FixedAnswer]
    failing_transfers: tuple[str, ...]
    turns: tuple[Turn, ...]
    expect: Expectations
    timeout: float = DEFAULT_TIMEOUT

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def normalise(text: str) -> str:
    """Spacing aside: folded YAML prompts end with a line break, the test's text does not."""
    return " ".join(text.split())


def node_refs(graph: FlowGraph) -> dict[str, tuple[str, str]]:
    """Every way a test may name a node of ``graph`` or of a flow it calls → (flow, node)."""
    refs: dict[str, tuple[str, str]] = {}
    for flow in flows_of(graph):
        for node_id in flow.nodes:
            refs[f"{flow.flow_id}/{node_id}"] = (flow.flow_id, node_id)
    for node_id in graph.nodes:
        refs[node_id] = (graph.flow_id, node_id)
    return refs


def flows_of(graph: FlowGraph) -> list[FlowGraph]:
    seen: dict[str, FlowGraph] = {}
    todo = [graph]
    while todo:
        flow = todo.pop()
        if flow.flow_id not in seen:
            seen[flow.flow_id] = flow
            todo += flow.subflows.values()
    return list(seen.values())


def resolve_node(key: str, graph: FlowGraph, refs: Mapping[str, tuple[str, str]]) -> tuple[str, str] | str:
    """(flow id, node id) for ``node`` or ``flow/node``; a message when there is none."""
    found = refs.get(key)
    if found is not None:
        return found
    if "/" in key:
        flow_id = key.split("/", 1)[0]
        if flow_id not in {flow for flow, _ in refs.values()}:
            return f"'{flow_id}' is not the flow '{graph.flow_id}' nor a flow it calls."
    return f"there is no node '{key}' in the flow '{graph.flow_id}'" + (
        " or the flows it calls." if graph.subflows else "."
    )


def flow_named(graph: FlowGraph, flow_id: str) -> FlowGraph:
    return next(flow for flow in flows_of(graph) if flow.flow_id == flow_id)
