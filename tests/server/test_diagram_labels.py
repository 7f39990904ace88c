"""The monitor's diagrams: no edge label covers another label or a node."""

from __future__ import annotations

import re
from itertools import combinations
from pathlib import Path

import pytest

from engine.authoring.render import diagram_from_graph
from engine.server.diagram_svg import NODE_HEIGHT, render_svg
from engine.server.flow_library import FlowLibrary

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = [ROOT / "flows", ROOT / "tests" / "dev" / "flows", ROOT / "tests" / "server" / "flows"]
RECT = re.compile(
    r'<rect class="edge-label-bg" x="([-\d.]+)" y="([-\d.]+)" '
    r'width="([-\d.]+)" height="([-\d.]+)"'
)
NODE = re.compile(r'transform="translate\(([-\d.]+),([-\d.]+)\)">.*?<rect width="([-\d.]+)"')


def _flows() -> list[tuple[str, object]]:
    found = []
    for folder in FOLDERS:
        library = FlowLibrary(folder)
        library.reload()
        found += sorted(library.flows.items())
    return found


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@pytest.mark.parametrize(("flow_id", "graph"), _flows(), ids=lambda v: v if isinstance(v, str) else "")
def test_edge_labels_never_overlap(flow_id: str, graph: object) -> None:
    svg = render_svg(diagram_from_graph(graph))  # type: ignore[arg-type]
    labels = [
        (x, y, x + w, y + h)
        for x, y, w, h in ((float(a), float(b), float(c), float(d)) for a, b, c, d in RECT.findall(svg))
    ]
    nodes = [
        (x, y, x + w, y + NODE_HEIGHT)
        for x, y, w in ((float(a), float(b), float(c)) for a, b, c in NODE.findall(svg))
    ]
    assert nodes
    for first, second in combinations(labels, 2):
        assert not _overlap(first, second), (flow_id, first, second)
    for label in labels:
        for node in nodes:
            assert not _overlap(label, node), (flow_id, label, node)
