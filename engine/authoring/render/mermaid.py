"""A :class:`~engine.authoring.render.Diagram` as a Mermaid ``flowchart TD``.

GitHub renders a ```mermaid block in a README, an issue or a pull request, so
this is the diagram reviewers see. Everything a flow author can write ends up
inside double-quoted labels with every character that means something to
Mermaid (quotes, brackets, ``#``, ``<``, ``>``, ``%``, ``:``, ``;``, backticks)
written as a ``#code;`` entity, so any flow gives a diagram that parses.
"""

from __future__ import annotations

import hashlib
import re
import string

from engine.authoring.render import Diagram, DiagramEdge, DiagramNode, Shape, Status, entry_edges

START_ID = "start"
ERROR_ID = "any_error"

# (opening, closing) around the quoted label, by shape.
_SHAPES: dict[Shape, tuple[str, str]] = {
    "voice": ("(", ")"),  # rounded box
    "decision": ("{", "}"),  # rhombus
    "terminal": ("([", "])"),  # stadium: the call ends here
    "subflow": ("[[", "]]"),  # subroutine
    "wait": ("{{", "}}"),  # hexagon
    "step": ("[", "]"),  # plain box
}

# Characters left as they are inside a quoted label. Everything else (quotes,
# brackets, '#', '<', '>', '%' which starts a comment, ':' and ';' which
# Mermaid's entity pre-pass looks for, backticks which start Markdown) becomes
# an entity; letters of any alphabet stay readable.
_PLAIN = frozenset(string.ascii_letters + string.digits + " ,.!?'/_-+=$")

# Colours close to GitHub's own for added / changed / removed.
CLASS_STYLES: dict[Status, str] = {
    "added": "fill:#dafbe1,stroke:#1a7f37,stroke-width:2px,color:#0a3622",
    "changed": "fill:#fff8c5,stroke:#9a6700,stroke-width:2px,color:#3b2300",
    "removed": "fill:#ffebe9,stroke:#cf222e,stroke-width:2px,stroke-dasharray:5 5,color:#82071e",
}
LINK_STYLES: dict[Status, str] = {
    "added": "stroke:#1a7f37,stroke-width:3px",
    "changed": "stroke:#9a6700,stroke-width:3px",
    "removed": "stroke:#cf222e,stroke-width:2px,stroke-dasharray:4 4",
}
_STATUS_WORDS: dict[Status, str] = {"added": "new", "changed": "changed", "removed": "removed"}
_SAFE_ID = re.compile(r"^[A-Za-z0-9_]+$")


def mermaid_id(node_id: str) -> str:
    """A Mermaid-safe identifier for a node id, the same every time.

    The prefix keeps ids clear of Mermaid keywords (``end``, ``graph``,
    ``class``...) and of ids starting with ``o``/``x``, which Mermaid reads as
    circle and cross arrow heads. Ids with other characters (``check-balance``)
    get a hash suffix and a different prefix, so two ids never map to one.
    """
    if _SAFE_ID.match(node_id):
        return f"n_{node_id}"
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", node_id)
    digest = hashlib.sha1(node_id.encode("utf-8")).hexdigest()[:8]
    return f"h_{cleaned}_{digest}"


def escape_label(text: str) -> str:
    """Text made safe inside a double-quoted Mermaid label."""
    out = []
    for char in text:
        if char in _PLAIN or (char.isalnum() and char.isprintable()):
            out.append(char)
        elif char == '"':
            out.append("#quot;")
        else:
            out.append(f"#{ord(char)};")
    return "".join(out)


def render_mermaid(diagram: Diagram) -> str:
    """The whole ``flowchart TD`` text, ending with a newline."""
    lines = [
        "flowchart TD",
        f"    %% flow {escape_label(diagram.flow_id)}, version {diagram.version}",
    ]
    lines.append(f"    {START_ID}((start))")
    lines += [f"    {_node_line(node)}" for node in diagram.nodes]
    if diagram.error_handler:
        lines.append(f'    {ERROR_ID}(("any error"))')
    edges = entry_edges(diagram, START_ID, ERROR_ID) + list(diagram.edges)
    lines += [f"    {_edge_line(edge)}" for edge in edges]
    lines += _class_lines(diagram)
    lines += _link_style_lines(edges)
    return "\n".join(lines) + "\n"


def node_label(node: DiagramNode) -> str:
    """Id, then type (and change), then the excerpt, one per line."""
    kind = node.type if node.status == "same" else f"{node.type}, {_STATUS_WORDS[node.status]}"
    parts = [escape_label(node.id), escape_label(kind)]
    if node.excerpt:
        excerpt = f'"{node.excerpt}"' if node.quoted else node.excerpt
        parts.append(escape_label(excerpt))
    return "<br/>".join(parts)


def _node_line(node: DiagramNode) -> str:
    opening, closing = _SHAPES[node.shape]
    return f'{mermaid_id(node.id)}{opening}"{node_label(node)}"{closing}'


def _endpoint(node_id: str) -> str:
    return node_id if node_id in (START_ID, ERROR_ID) else mermaid_id(node_id)


def _edge_line(edge: DiagramEdge) -> str:
    arrow = "-.->" if edge.soft or edge.status == "removed" else "-->"
    label = edge.label
    if edge.status == "removed":  # also said in words: colour is not all readers see
        label = f"removed: {label}" if label else "removed"
    text = f'|"{escape_label(label)}"|' if label else ""
    return f"{_endpoint(edge.source)} {arrow}{text} {_endpoint(edge.target)}"


def _class_lines(diagram: Diagram) -> list[str]:
    by_status: dict[Status, list[str]] = {}
    for node in diagram.nodes:
        if node.status != "same":
            by_status.setdefault(node.status, []).append(mermaid_id(node.id))
    lines = []
    for status, ids in by_status.items():
        lines.append(f"    classDef {status} {CLASS_STYLES[status]}")
        lines.append(f"    class {','.join(ids)} {status}")
    return lines


def _link_style_lines(edges: list[DiagramEdge]) -> list[str]:
    """Mermaid styles links by their position in the text, counting from 0."""
    by_status: dict[Status, list[str]] = {}
    for index, edge in enumerate(edges):
        if edge.status != "same":
            by_status.setdefault(edge.status, []).append(str(index))
    return [
        f"    linkStyle {','.join(indexes)} {LINK_STYLES[status]}" for status, indexes in by_status.items()
    ]
