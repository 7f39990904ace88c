"""Diagrams of a call: a small model shared by the Mermaid and Graphviz renderers.

A :class:`Diagram` is what a picture of a flow shows, independent of any
diagram language: boxes with a shape and a short excerpt, arrows with a label
and a style, and optionally a change status on each (``voxflow diff`` marks
what was added, changed or removed). ``engine.authoring.render.mermaid`` and
``engine.authoring.render.dot`` turn one into text; neither knows about FlowGraph.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from engine.language.compile import Exit, FlowGraph, FlowNode
from engine.language.registry import installed

Shape = Literal["voice", "decision", "terminal", "subflow", "wait", "step"]
Status = Literal["same", "added", "changed", "removed"]

EXCERPT_LENGTH = 40
# Exits taken when something went wrong rather than on the normal path: drawn dotted.
_SOFT_EXIT_HEADS = ("on_error", "on_timeout", "no_input", "no_match", "timeout")


@dataclass(frozen=True)
class DiagramNode:
    """One box. ``excerpt`` is already shortened; ``quoted`` says whether it is speech."""

    id: str
    type: str
    excerpt: str = ""
    quoted: bool = False
    shape: Shape = "step"
    status: Status = "same"


@dataclass(frozen=True)
class DiagramEdge:
    source: str
    target: str
    label: str = ""
    soft: bool = False  # an error / no input / no match / timeout path
    status: Status = "same"


@dataclass(frozen=True)
class Diagram:
    """Everything a renderer draws. Nodes and edges are in the order they are drawn."""

    flow_id: str
    version: str
    start: str
    nodes: tuple[DiagramNode, ...]
    edges: tuple[DiagramEdge, ...]
    error_handler: str | None = None
    start_status: Status = "same"
    error_handler_status: Status = "same"


def diagram_from_graph(graph: FlowGraph) -> Diagram:
    """The diagram of one compiled flow, nodes in the order the file lists them."""
    return Diagram(
        flow_id=graph.flow_id,
        version=graph.short_version,
        start=graph.start,
        nodes=tuple(diagram_node(node) for node in graph.nodes.values()),
        edges=tuple(diagram_edge(node, exit_) for node in graph.nodes.values() for exit_ in node.exits),
        error_handler=graph.error_handler,
    )


def entry_edges(diagram: Diagram, start_id: str, error_id: str) -> list[DiagramEdge]:
    """The start arrow, and the flow-wide error handler's, as ordinary edges.

    Each format names the two entry points its own way, hence the ids.
    """
    edges = [DiagramEdge(start_id, diagram.start, status=diagram.start_status)]
    if diagram.error_handler:
        edges.append(
            DiagramEdge(error_id, diagram.error_handler, soft=True, status=diagram.error_handler_status)
        )
    return edges


def diagram_node(node: FlowNode, status: Status = "same") -> DiagramNode:
    excerpt, quoted = node_excerpt(node)
    return DiagramNode(node.id, node.type, excerpt, quoted, node_shape(node), status)


def diagram_edge(node: FlowNode, exit_: Exit, status: Status = "same") -> DiagramEdge:
    return DiagramEdge(node.id, exit_.target, exit_.label, is_soft_exit(exit_), status)


def node_shape(node: FlowNode) -> Shape:
    """Shape by what the node does; a node with no way out ends the call."""
    found = installed(node.type)
    asked = found.diagram_shape if found is not None else None
    if asked == "decision":
        return "decision"
    if not node.exits:
        return "terminal"
    if asked in ("subflow", "wait"):
        return asked  # type: ignore[return-value]
    if found is not None and found.talks_to_caller:
        return "voice"
    return "step"


def node_excerpt(node: FlowNode, limit: int = EXCERPT_LENGTH) -> tuple[str, bool]:
    """A short reminder of what the node does: what it says (quoted) or a key detail."""
    found = installed(node.type)
    for name in found.spoken_fields if found is not None else ():
        value = node.config.get(name)
        if isinstance(value, str) and value.strip():
            return shorten(value, limit), True
    detail = _node_detail(node)
    return (shorten(detail, limit), False) if detail else ("", False)


def _node_detail(node: FlowNode) -> str:
    found = installed(node.type)
    if found is None or found.describe is None:
        return ""
    return str(found.describe(node.config))


def shorten(text: str, limit: int = EXCERPT_LENGTH) -> str:
    """Whitespace (newlines included) collapsed, cut at a word near ``limit`` with '…'."""
    flat = re.sub(r"\s+", " ", text).strip()
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,.;:") + "…"


def is_soft_exit(exit_: Exit) -> bool:
    head = re.split(r"[.\[]", exit_.name, maxsplit=1)[0]
    return head in _SOFT_EXIT_HEADS
