"""A :class:`~engine.authoring.render.Diagram` as Graphviz DOT (``dot -Tsvg flow.dot > flow.svg``).

Same content as the Mermaid diagram. Node ids are quoted DOT strings, so a
node keeps its own id; in every quoted string a backslash is doubled (else
Graphviz would read ``\\N`` or ``\\l`` in a message as its own escapes) and
quotes are escaped.
"""

from __future__ import annotations

from engine.authoring.render import Diagram, DiagramEdge, DiagramNode, Shape, Status, entry_edges

# Names that cannot be node ids (those start with a letter), so they never clash.
START_ID = "__start__"
ERROR_ID = "__any_error__"

# Graphviz shape and the styles it needs, by kind of node.
_SHAPES: dict[Shape, tuple[str, frozenset[str]]] = {
    "voice": ("shape=box", frozenset({"rounded"})),
    "decision": ("shape=diamond", frozenset()),
    "terminal": ("shape=box, peripheries=2", frozenset({"rounded", "bold"})),
    "subflow": ("shape=component", frozenset()),
    "wait": ("shape=hexagon", frozenset()),
    "step": ("shape=box", frozenset()),
}
_NODE_COLOURS: dict[Status, str] = {
    "added": 'color="#1a7f37", fillcolor="#dafbe1"',
    "changed": 'color="#9a6700", fillcolor="#fff8c5"',
    "removed": 'color="#cf222e", fillcolor="#ffebe9"',
}
_EDGE_COLOURS: dict[Status, str] = {
    "added": 'color="#1a7f37", penwidth=2',
    "changed": 'color="#9a6700", penwidth=2',
    "removed": 'color="#cf222e", style=dashed',
}
_STATUS_WORDS: dict[Status, str] = {"added": "new", "changed": "changed", "removed": "removed"}


def quote(text: str) -> str:
    """A DOT double-quoted string holding ``text`` exactly.

    Graphviz decodes HTML entities (``&amp;``, ``&#945;``) in every label, so
    ``&`` is written as ``&amp;`` to keep what the author wrote.
    """
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("&", "&amp;")
    escaped = escaped.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    return f'"{escaped}"'


def render_dot(diagram: Diagram) -> str:
    lines = [
        f"digraph {quote(diagram.flow_id)} {{",
        f"  // flow {diagram.flow_id.replace(chr(10), ' ')}, version {diagram.version}",
        '  graph [rankdir=TB, fontname="Helvetica"];',
        '  node [fontname="Helvetica", fontsize=11];',
        '  edge [fontname="Helvetica", fontsize=10];',
        f'  {quote(START_ID)} [label="start", shape=circle];',
    ]
    lines += [f"  {_node_line(node)}" for node in diagram.nodes]
    if diagram.error_handler:
        lines.append(f'  {quote(ERROR_ID)} [label="any error", shape=circle, style=dashed];')
    edges = entry_edges(diagram, START_ID, ERROR_ID) + list(diagram.edges)
    lines += [f"  {_edge_line(edge)}" for edge in edges]
    lines.append("}")
    return "\n".join(lines) + "\n"


def node_label(node: DiagramNode) -> str:
    kind = node.type if node.status == "same" else f"{node.type}, {_STATUS_WORDS[node.status]}"
    parts = [node.id, kind]
    if node.excerpt:
        parts.append(f'"{node.excerpt}"' if node.quoted else node.excerpt)
    return "\n".join(parts)


def _node_line(node: DiagramNode) -> str:
    shape, styles = _SHAPES[node.shape]
    attributes = [f"label={quote(node_label(node))}", shape]
    if node.status != "same":
        attributes.append(_NODE_COLOURS[node.status])
        styles = styles | {"filled"} | ({"dashed"} if node.status == "removed" else set())
    if styles:
        attributes.append(f"style={quote(','.join(sorted(styles)))}")
    return f"{quote(node.id)} [{', '.join(attributes)}];"


def _edge_line(edge: DiagramEdge) -> str:
    attributes = []
    label = edge.label
    if edge.status == "removed":
        label = f"removed: {label}" if label else "removed"
    if label:
        attributes.append(f"label={quote(label)}")
    if edge.status != "same":
        attributes.append(_EDGE_COLOURS[edge.status])
    if edge.soft and edge.status != "removed":
        attributes.append("style=dotted")
    suffix = f" [{', '.join(attributes)}]" if attributes else ""
    return f"{quote(edge.source)} -> {quote(edge.target)}{suffix};"
