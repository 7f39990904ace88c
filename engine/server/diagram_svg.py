"""A flow's diagram as SVG, laid out here: the monitor page needs no script from the web.

Mermaid (``voxflow graph``) is what reviewers read on GitHub; the monitor page
draws the same :class:`~engine.authoring.render.Diagram` itself, so it works offline and
every node is an element it can light up: ``<g class="node" data-node="menu">``.

Layout, in the spirit of a layered (Sugiyama) drawing kept small:

1. layers: a depth-first walk from the start marks the edges that go back
   (loops); along the others each node sits one layer below its lowest parent;
2. order within a layer: a few sweeps placing each node at the average
   position of its neighbours in the layer above, then below (fewer crossings);
3. edges: downward curves between neighbouring layers; edges that skip layers are
   drawn round the left side, edges that go back up round the right side, so no
   edge runs behind a box.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from engine.authoring.render import Diagram, DiagramEdge, DiagramNode

NODE_HEIGHT = 62
LAYER_GAP = 56
NODE_GAP = 36
MARGIN = 24
CHAR_WIDTH = 6.6  # average width of a 12px sans-serif character
MIN_WIDTH, MAX_WIDTH = 130, 250
LABEL_CHARS = 34
SWEEPS = 4
GUTTER = 70  # room on the left for edges that skip layers, on the right for loops

STYLE = """
.flow-diagram { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; font-size: 12px; }
.flow-diagram .node rect { fill: #f6f8fa; stroke: #8c959f; stroke-width: 1.2; }
.flow-diagram .node.shape-voice rect { fill: #ddf4ff; stroke: #54aeff; }
.flow-diagram .node.shape-decision rect { fill: #fff8c5; stroke: #d4a72c; }
.flow-diagram .node.shape-terminal rect { fill: #ffebe9; stroke: #ff8182; }
.flow-diagram .node.shape-subflow rect { fill: #fbefff; stroke: #c297ff; }
.flow-diagram .node.shape-wait rect { fill: #fff1e5; stroke: #fb8f44; }
.flow-diagram .node .node-id { font-weight: 600; fill: #1f2328; }
.flow-diagram .node .node-type { fill: #59636e; font-size: 11px; }
.flow-diagram .node .node-text { fill: #1f2328; font-style: italic; font-size: 11px; }
.flow-diagram .node.visited rect { stroke: #1a7f37; stroke-width: 2; }
.flow-diagram .node.current rect { fill: #ffd33d; stroke: #bf8700; stroke-width: 3; }
.flow-diagram .edge { fill: none; stroke: #8c959f; stroke-width: 1.4; }
.flow-diagram .edge.soft { stroke-dasharray: 5 4; }
.flow-diagram .edge-label { fill: #59636e; font-size: 11px; }
.flow-diagram .edge-label-bg { fill: #ffffff; opacity: 0.9; }
.flow-diagram .start-dot { fill: #1f2328; }
"""


@dataclass
class _Box:
    node: DiagramNode
    layer: int = 0
    order: float = 0.0
    x: float = 0.0
    y: float = 0.0
    width: float = MIN_WIDTH


def render_svg(diagram: Diagram) -> str:
    boxes = {node.id: _Box(node) for node in diagram.nodes}
    edges = [e for e in diagram.edges if e.source in boxes and e.target in boxes]
    back = _back_edges(diagram, edges)
    _assign_layers(diagram, boxes, [e for e in edges if (e.source, e.target) not in back])
    layers = _order_layers(boxes, edges)
    width, height = _place(layers)
    marker = "arrow-" + re.sub(r"[^A-Za-z0-9_-]", "_", diagram.flow_id)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="flow-diagram" '
        f"data-flow={quoteattr(diagram.flow_id)} data-version={quoteattr(diagram.version)} "
        f'viewBox="0 0 {width + 2 * GUTTER:.0f} {height:.0f}" '
        f'width="{width + 2 * GUTTER:.0f}" '
        f'height="{height:.0f}" role="img" aria-label={quoteattr("flow " + diagram.flow_id)}>',
        f"<style>{STYLE}</style>",
        f'<defs><marker id="{marker}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
        'fill="#8c959f"/></marker></defs>',
    ]
    start = boxes.get(diagram.start)
    if start is not None:
        cx = start.x + start.width / 2
        parts.append(f'<circle class="start-dot" cx="{cx:.1f}" cy="{MARGIN - 8}" r="6"/>')
        parts.append(
            f'<path class="edge" d="M {cx:.1f} {MARGIN - 2} L {cx:.1f} {start.y:.1f}" '
            f'marker-end="url(#{marker})"/>'
        )
    parts.append('<g class="edges">')
    right = max((b.x + b.width for b in boxes.values()), default=0)
    left = min((b.x for b in boxes.values()), default=0)
    labels: list[_Label] = []
    for index, edge in enumerate(edges):
        path, label = _edge_svg(edge, boxes, (edge.source, edge.target) in back, (left, right), index, marker)
        parts.append(path)
        if label is not None:
            labels.append(label)
    parts.append('</g><g class="nodes">')
    parts += [_node_svg(box) for box in boxes.values()]
    parts.append('</g><g class="edge-labels">')
    parts += [label.svg() for label in _place_labels(labels, list(boxes.values()))]
    parts.append("</g></svg>")
    return "\n".join(parts)


def _back_edges(diagram: Diagram, edges: list[DiagramEdge]) -> set[tuple[str, str]]:
    """Edges that close a loop, found by a depth-first walk from the start."""
    children: dict[str, list[str]] = defaultdict(list)
    for edge in edges:
        children[edge.source].append(edge.target)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    back: set[tuple[str, str]] = set()
    roots = [diagram.start] + [n.id for n in diagram.nodes]
    for root in roots:
        if root in state or root not in {n.id for n in diagram.nodes}:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        state[root] = 1
        while stack:
            node, index = stack.pop()
            kids = children.get(node, [])
            if index < len(kids):
                stack.append((node, index + 1))
                child = kids[index]
                if state.get(child) == 1:
                    back.add((node, child))
                elif child not in state:
                    state[child] = 1
                    stack.append((child, 0))
            else:
                state[node] = 2
    return back


def _assign_layers(diagram: Diagram, boxes: dict[str, _Box], forward: list[DiagramEdge]) -> None:
    parents: dict[str, list[str]] = defaultdict(list)
    for edge in forward:
        parents[edge.target].append(edge.source)
    memo: dict[str, int] = {}

    def layer(node: str, depth: int = 0) -> int:
        if node in memo:
            return memo[node]
        if depth > len(boxes):  # cannot happen without a cycle; stay safe anyway
            return 0
        value = 1 + max((layer(p, depth + 1) for p in parents.get(node, [])), default=-1)
        memo[node] = value
        return value

    for node_id, box in boxes.items():
        box.layer = layer(node_id)


def _order_layers(boxes: dict[str, _Box], edges: list[DiagramEdge]) -> list[list[_Box]]:
    count = max((b.layer for b in boxes.values()), default=0) + 1
    layers: list[list[_Box]] = [[] for _ in range(count)]
    for box in boxes.values():
        layers[box.layer].append(box)
    for row in layers:
        for index, box in enumerate(row):
            box.order = index
    up: dict[str, list[str]] = defaultdict(list)
    down: dict[str, list[str]] = defaultdict(list)
    for edge in edges:
        up[edge.target].append(edge.source)
        down[edge.source].append(edge.target)
    for sweep in range(SWEEPS):
        rows = layers[1:] if sweep % 2 == 0 else list(reversed(layers[:-1]))
        neighbours = up if sweep % 2 == 0 else down
        for row in rows:
            for box in row:
                linked = [boxes[n].order for n in neighbours[box.node.id] if boxes[n].layer != box.layer]
                if linked:
                    box.order = sum(linked) / len(linked)
            row.sort(key=lambda b: b.order)
            for index, box in enumerate(row):
                box.order = index
    return layers


def _place(layers: list[list[_Box]]) -> tuple[float, float]:
    for row in layers:
        for box in row:
            longest = max(len(box.node.id), len(box.node.type), len(box.node.excerpt) + 2)
            box.width = min(MAX_WIDTH, max(MIN_WIDTH, longest * CHAR_WIDTH + 24))
    widths = [sum(b.width for b in row) + NODE_GAP * max(len(row) - 1, 0) for row in layers]
    total = max(widths, default=MIN_WIDTH)
    for index, row in enumerate(layers):
        x = MARGIN + GUTTER + (total - widths[index]) / 2
        for box in row:
            box.x = x
            box.y = MARGIN + 16 + index * (NODE_HEIGHT + LAYER_GAP)
            x += box.width + NODE_GAP
    height = MARGIN * 2 + 16 + len(layers) * (NODE_HEIGHT + LAYER_GAP) - LAYER_GAP
    return total + MARGIN * 2, height


def _node_svg(box: _Box) -> str:
    node = box.node
    excerpt = f"“{node.excerpt}”" if node.quoted and node.excerpt else node.excerpt
    cx = box.width / 2
    lines = [
        f'<text class="node-id" x="{cx:.1f}" y="18" text-anchor="middle">{escape(node.id)}</text>',
        f'<text class="node-type" x="{cx:.1f}" y="34" text-anchor="middle">{escape(node.type)}</text>',
    ]
    if excerpt:
        lines.append(
            f'<text class="node-text" x="{cx:.1f}" y="51" text-anchor="middle">'
            f"{escape(_fit(excerpt, box.width))}</text>"
        )
    radius = 16 if node.shape in ("voice", "terminal") else 4
    return (
        f'<g class="node shape-{node.shape}" data-node={quoteattr(node.id)} '
        f'transform="translate({box.x:.1f},{box.y:.1f})"><title>{escape(node.id)} '
        f'({escape(node.type)})</title><rect width="{box.width:.1f}" height="{NODE_HEIGHT}" '
        f'rx="{radius}"/>' + "".join(lines) + "</g>"
    )


@dataclass
class _Label:
    """An edge's label: its text, centred on (x, y) unless moved off another label."""

    text: str
    x: float
    y: float
    source: str
    target: str

    @property
    def width(self) -> float:
        return len(self.text) * CHAR_WIDTH * 0.95 + 6

    def rect(self) -> tuple[float, float, float, float]:
        return (self.x - self.width / 2, self.y - 9, self.x + self.width / 2, self.y + 5)

    def svg(self) -> str:
        x0, y0, _, _ = self.rect()
        return (
            f'<g class="edge-label-box" data-source={quoteattr(self.source)} '
            f'data-target={quoteattr(self.target)}><rect class="edge-label-bg" '
            f'x="{x0:.1f}" y="{y0:.1f}" width="{self.width:.1f}" height="14" rx="3"/>'
            f'<text class="edge-label" x="{self.x:.1f}" y="{self.y + 2:.1f}" '
            f'text-anchor="middle">{escape(self.text)}</text></g>'
        )


def _overlap(
    a: tuple[float, float, float, float], b: tuple[float, float, float, float], gap: float = 2.0
) -> bool:
    return a[0] < b[2] + gap and b[0] < a[2] + gap and a[1] < b[3] + gap and b[1] < a[3] + gap


def _place_labels(labels: list[_Label], boxes: list[_Box]) -> list[_Label]:
    """Move each label along its edge's lane, in 16 px steps either way, until it covers
    neither a node nor a label placed before it (no two labels ever overlap)."""
    taken = [(b.x, b.y, b.x + b.width, b.y + NODE_HEIGHT) for b in boxes]
    placed: list[_Label] = []
    steps = [0.0] + [sign * 16.0 * n for n in range(1, 40) for sign in (1, -1)]
    for label in labels:
        base = label.y
        for step in steps:
            label.y = base + step
            if not any(_overlap(label.rect(), other) for other in taken):
                break
        else:
            label.y = base + steps[-1] + 16  # nowhere free nearby: below everything tried
        taken.append(label.rect())
        placed.append(label)
    return placed


def _edge_svg(
    edge: DiagramEdge,
    boxes: dict[str, _Box],
    back: bool,
    bounds: tuple[float, float],
    index: int,
    marker: str,
) -> tuple[str, _Label | None]:
    source, target = boxes[edge.source], boxes[edge.target]
    left, right = bounds
    if not back and target.layer > source.layer + 1:
        lane = left - 18 - (index % 4) * 12
        sx, sy = source.x, source.y + NODE_HEIGHT / 2
        tx, ty = target.x, target.y + NODE_HEIGHT / 2
        d = f"M {sx:.1f} {sy:.1f} C {lane:.1f} {sy:.1f}, {lane:.1f} {ty:.1f}, {tx - 2:.1f} {ty:.1f}"
        lx, ly = lane + 4, (sy + ty) / 2
    elif back or target.layer <= source.layer:
        # Round the right-hand side, each loop a little further out so they stay apart.
        lane = right + 18 + (index % 5) * 12
        sx, sy = source.x + source.width, source.y + NODE_HEIGHT / 2
        tx, ty = target.x + target.width, target.y + NODE_HEIGHT / 2
        d = f"M {sx:.1f} {sy:.1f} C {lane:.1f} {sy:.1f}, {lane:.1f} {ty:.1f}, {tx + 2:.1f} {ty:.1f}"
        lx, ly = lane - 4, (sy + ty) / 2
    else:
        sx, sy = source.x + source.width / 2, source.y + NODE_HEIGHT
        tx, ty = target.x + target.width / 2, target.y
        bend = (ty - sy) / 2
        d = f"M {sx:.1f} {sy:.1f} C {sx:.1f} {sy + bend:.1f}, {tx:.1f} {ty - bend:.1f}, {tx:.1f} {ty - 2:.1f}"
        lx, ly = (sx + tx) / 2, (sy + ty) / 2
    classes = "edge soft" if edge.soft else "edge"
    path = (
        f'<path class="{classes}" data-source={quoteattr(edge.source)} '
        f'data-target={quoteattr(edge.target)} d="{d}" marker-end="url(#{marker})"/>'
    )
    if not edge.label:
        return path, None
    return path, _Label(_fit(edge.label, LABEL_CHARS * CHAR_WIDTH), lx, ly, edge.source, edge.target)


def _fit(text: str, width: float) -> str:
    limit = max(8, int((width - 12) / CHAR_WIDTH))
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
