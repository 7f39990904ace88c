"""What a call may say next, read from its compiled graph.

While the caller has the turn at a node, the agent can synthesise what the call
will say after it, so that the reply's first audio is a cache read
(engine.agent.next_prompts). This finds those texts, as written (``${...}``
still in them; the run_node activity fills them in with the call's variables):

1. following the node's exits breadth first, through nodes that do not talk to
   the caller (logic, an http request), the texts of the first nodes that do:
   the first text of each (its prompt or message) before their others
   (reprompts, what a handler says);
2. then the node's own texts: the reprompt or goodbye its answer may bring (its
   prompt, just said, is cached already and skipped).

A node talks to the caller when its type says so (``TALKS_TO_CALLER``); what it
may say is its ``SPOKEN_FIELDS`` and its handlers' reprompts (``FlowNode.says``).
The walk is bounded (``steps`` nodes deep, ``limit`` texts), so a large menu
costs the same as a small one.
"""

from __future__ import annotations

from typing import Any

from engine.language.compile import FlowGraph
from engine.language.templates import TemplateProblem, render

UPCOMING_STEPS = 3
UPCOMING_LIMIT = 8


def upcoming_texts(
    graph: FlowGraph, node_id: str, *, steps: int = UPCOMING_STEPS, limit: int = UPCOMING_LIMIT
) -> list[str]:
    """The texts the call may say after ``node_id``, most likely first, at most ``limit``."""
    nodes = graph.nodes
    start = nodes.get(node_id)
    if start is None or limit <= 0:
        return []
    speakers: list[tuple[str, ...]] = []
    seen = {node_id}
    frontier = [exit_.target for exit_ in start.exits]
    for _ in range(steps):
        following: list[str] = []
        for target in frontier:
            node = nodes.get(target)
            if node is None or target in seen:
                continue
            seen.add(target)
            if node.talks_to_caller:
                speakers.append(node.says)
            else:
                following.extend(exit_.target for exit_ in node.exits)
        frontier = following
        if not frontier:
            break
    found: dict[str, None] = {}
    ordered = [says[:1] for says in speakers] + [says[1:] for says in speakers] + [start.says]
    for texts in ordered:
        for text in texts:
            found.setdefault(text, None)
            if len(found) >= limit:
                return list(found)
    return list(found)


def graph_prompts(graph: Any) -> list[str]:
    """Every text with no ``${}`` that a compiled flow and its subflows may say (what
    their nodes' ``SPOKEN_FIELDS`` and handlers hold: ``FlowNode.says``), as it is said:
    filled in as the run_node activity fills in a text with no variable."""
    found: dict[str, None] = {}
    stack, seen = [graph], set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        for node in current.nodes.values():
            for text in getattr(node, "says", ()):
                if "${" in text:
                    continue
                try:
                    spoken = render(text, {})
                except TemplateProblem:
                    continue
                if spoken.strip():
                    found.setdefault(spoken, None)
        stack.extend(getattr(current, "subflows", {}).values())
    return list(found)
