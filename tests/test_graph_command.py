"""``voxflow graph``: Mermaid and DOT diagrams of every example flow, and of awkward ones.

Mermaid cannot be run from Python, so every diagram goes through a strict
line-by-line checker written here (the grammar we emit is small). When Node.js
can load the ``mermaid`` and ``jsdom`` packages (installed by hand, e.g.
``npm install mermaid jsdom`` with NODE_PATH pointing at them), the real
Mermaid parser checks them too; the tests never download anything.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from engine.authoring.render.mermaid import escape_label, mermaid_id
from engine.cli.main import main
from engine.language.compile import FlowGraph
from engine.language.project import compile_file

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "flows").glob("*.yaml"))

# ---------------------------------------------------------------------------
# A strict checker for the Mermaid we write

_ID = r"[A-Za-z][A-Za-z0-9_]*"
# Inside a label: no raw quote, '#', '<', '>', '%', '`', ':', ';', brackets or '|';
# only entities (#quot; #91;) and our own line breaks.
_LABEL = r'"(?:[^"#<>%`:;\[\]{}()|\n]|#[A-Za-z0-9]+;|<br/>)*"'
_SHAPES = [("([", "])"), ("[[", "]]"), ("{{", "}}"), ("((", "))"), ("(", ")"), ("[", "]"), ("{", "}")]
_NODE = re.compile(
    rf"^    (?P<id>{_ID})(?P<shape>"
    + "|".join(f"{re.escape(o)}(?P<label{i}>{_LABEL}){re.escape(c)}" for i, (o, c) in enumerate(_SHAPES))
    + ")$"
)
_EDGE = re.compile(rf"^    (?P<src>{_ID}) (?P<arrow>-->|-\.->)(?:\|(?P<label>{_LABEL})\|)? (?P<dst>{_ID})$")
_STYLE = r"[a-z-]+:[#A-Za-z0-9. ]+(?:,[a-z-]+:[#A-Za-z0-9. ]+)*"
_CLASSDEF = re.compile(rf"^    classDef (?P<name>added|changed|removed) {_STYLE}$")
_CLASS = re.compile(rf"^    class (?P<ids>{_ID}(?:,{_ID})*) (?P<name>added|changed|removed)$")
_LINKSTYLE = re.compile(rf"^    linkStyle (?P<indexes>\d+(?:,\d+)*) {_STYLE}$")
_COMMENT = re.compile(r"^    %% [^\n]*$")
_START = "    start((start))"
_KEYWORDS = {
    "end",
    "graph",
    "subgraph",
    "flowchart",
    "style",
    "class",
    "classdef",
    "click",
    "linkstyle",
    "default",
    "direction",
    "call",
    "href",
}


@dataclass
class Mermaid:
    """What a diagram holds once checked: node labels by id, edges in order, marks."""

    nodes: dict[str, str] = field(default_factory=dict)
    edges: list[tuple[str, str, str, str]] = field(default_factory=list)  # src, arrow, label, dst
    classes: dict[str, str] = field(default_factory=dict)  # node id → added/changed/removed
    link_styles: dict[int, str] = field(default_factory=dict)  # edge index → its style


def decode(label: str) -> str:
    """A quoted Mermaid label back to the text a reader sees."""
    inner = label[1:-1].replace("<br/>", "\n")

    def entity(match: re.Match[str]) -> str:
        code = match[1]
        return chr(int(code)) if code.isdigit() else html.unescape(f"&{code};")

    return re.sub(r"#(\w+);", entity, inner)


def check_mermaid(text: str) -> Mermaid:
    """Fail on any line we do not expect; return what the diagram says."""
    lines = text.rstrip("\n").split("\n")
    assert lines[0] == "flowchart TD", lines[0]
    assert _START in lines, "no start node"
    found = Mermaid()
    class_defs: set[str] = set()
    for line in lines[1:]:
        if line == _START:
            found.nodes["start"] = '"start"'
        elif match := _NODE.match(line):
            node_id = match["id"]
            assert node_id not in found.nodes, f"node defined twice: {line}"
            assert node_id.lower() not in _KEYWORDS and not node_id.startswith(("o", "x")), node_id
            label = next(v for k, v in match.groupdict().items() if k.startswith("label") and v)
            found.nodes[node_id] = label
        elif match := _EDGE.match(line):
            label = decode(match["label"] or '""')
            found.edges.append((match["src"], match["arrow"], label, match["dst"]))
        elif match := _CLASSDEF.match(line):
            class_defs.add(match["name"])
        elif match := _CLASS.match(line):
            assert match["name"] in class_defs, f"class used before classDef: {line}"
            for node_id in match["ids"].split(","):
                found.classes[node_id] = match["name"]
        elif match := _LINKSTYLE.match(line):
            for index in match["indexes"].split(","):
                found.link_styles[int(index)] = line
        else:
            assert _COMMENT.match(line), f"unexpected Mermaid line: {line!r}"
    for src, _, _, dst in found.edges:
        assert src in found.nodes and dst in found.nodes, f"edge to an undefined node: {src} → {dst}"
    assert all(node_id in found.nodes for node_id in found.classes)
    assert all(index < len(found.edges) for index in found.link_styles), "linkStyle past the last link"
    return found


def check_graph_drawn(found: Mermaid, graph: FlowGraph) -> None:
    """Every node and every exit of the compiled flow is in the diagram."""
    for node in graph.nodes.values():
        label = decode(found.nodes[mermaid_id(node.id)])
        first, second = label.split("\n")[:2]
        assert first == node.id and second.startswith(node.type), label
    assert ("start", "-->", "", mermaid_id(graph.start)) in found.edges
    for node in graph.nodes.values():
        for exit_ in node.exits:
            assert any(
                src == mermaid_id(node.id) and dst == mermaid_id(exit_.target) and label == exit_.label
                for src, _, label, dst in found.edges
            ), f"exit {node.id}.{exit_.name} is missing"
    exits = sum(len(node.exits) for node in graph.nodes.values())
    assert len(found.edges) == exits + 1 + (1 if graph.error_handler else 0)


# ---------------------------------------------------------------------------
# The real Mermaid parser, when this machine has it (never downloaded by tests)

_PARSER_JS = r"""
const { createRequire } = require('module');
const { pathToFileURL } = require('url');
const fs = require('fs');
(async () => {
  const req = createRequire(process.cwd() + '/');
  const { JSDOM } = req('jsdom');
  const dom = new JSDOM('<!doctype html><html><body></body></html>');
  globalThis.window = dom.window; globalThis.document = dom.window.document;
  globalThis.DOMParser = dom.window.DOMParser;
  const mermaid = (await import(pathToFileURL(req.resolve('mermaid')).href)).default;
  let failed = 0;
  for (const file of process.argv.slice(2)) {
    try { await mermaid.parse(fs.readFileSync(file, 'utf8')); }
    catch (e) { failed++; console.log(file + ': ' + String(e.message || e)); }
  }
  process.exit(failed ? 1 : 0);
})().catch((e) => { console.log('cannot load mermaid: ' + e); process.exit(2); });
"""


@pytest.fixture(scope="session")
def mermaid_parser(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """A script that parses .mmd files with the real Mermaid, or None when unavailable."""
    if not shutil.which("node"):
        return None
    script = tmp_path_factory.mktemp("mermaid") / "parse.cjs"
    script.write_text(_PARSER_JS, encoding="utf-8")
    probe = subprocess.run(["node", str(script)], capture_output=True, text=True, timeout=120)
    return script if probe.returncode == 0 else None


def parse_with_mermaid(parser: Path | None, files: list[Path]) -> None:
    if parser is None:
        return
    result = subprocess.run(
        ["node", str(parser), *map(str, files)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------------------
# A flow with everything a label can hold

AWKWARD = """\
flow: awkward
description: Labels with every character that means something to Mermaid or DOT.
error_handler: sorry-node
start: check-balance
nodes:
  check-balance:
    type: voice_menu
    prompt: |
      Say "yes" [or] {no} #1 <b>bold</b> %% not a comment; a:b `code` & café
      second line --> x
    options:
      - key: "#"
        phrases: ["\\"quoted\\"", "a|b", "end"]
        next: end
      - key: "*"
        phrases: ["<script>", "%%", "x;y"]
        next: o-node
    no_input:
      - next: sorry-node
    no_match:
      - next: sorry-node
  end:
    type: condition
    branches:
      - if: 'caller_number == "a|b" or caller_number > "1"'
        next: o-node
      - if: "[1, 2] | length == 2"
        next: x_node
    else: sorry-node
  o-node:
    type: voice_speak
    message: 'Say "hi"; #quot; &amp; ${caller_number}'
    next: x_node
  x_node:
    type: end
  sorry-node:
    type: voice_hangup
    farewell_message: "Sorry <3 \\\\N \\\\l"
"""


@pytest.fixture
def awkward_flow(tmp_path: Path) -> Path:
    path = tmp_path / "awkward.yaml"
    path.write_text(AWKWARD, encoding="utf-8")
    return path


def graph_output(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(["graph", *argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


# ---------------------------------------------------------------------------
# Mermaid


@pytest.mark.parametrize("flow", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_flow_draws_as_wellformed_mermaid(
    flow: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path, mermaid_parser: Path | None
) -> None:
    out = graph_output(capsys, str(flow))
    check_graph_drawn(check_mermaid(out), compile_file(flow))
    (tmp_path / "flow.mmd").write_text(out, encoding="utf-8")
    parse_with_mermaid(mermaid_parser, [tmp_path / "flow.mmd"])


def test_examples_exist() -> None:
    assert len(EXAMPLES) >= 1, "no example flows found in flows/"


def test_awkward_labels_are_escaped_and_ids_made_safe(
    awkward_flow: Path,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    mermaid_parser: Path | None,
) -> None:
    out = graph_output(capsys, str(awkward_flow))
    found = check_mermaid(out)
    check_graph_drawn(found, compile_file(awkward_flow))
    # Hyphenated ids get safe, distinct Mermaid ids; 'end' is not left bare.
    assert mermaid_id("check-balance") in found.nodes
    assert mermaid_id("check-balance") != mermaid_id("check_balance")
    assert "n_end" in found.nodes
    menu = found.nodes[mermaid_id("check-balance")]
    assert "#quot;yes#quot;" in menu and "#91;or#93;" in menu and "#35;1" in menu
    assert "#60;b#62;" in menu
    speak = decode(found.nodes[mermaid_id("o-node")])
    assert speak.split("\n")[2] == '"Say "hi"; #quot; &amp; ${caller_number}"'
    labels = {label for _, _, label, _ in found.edges}
    assert '# / "quoted" / a|b' in labels and "* / <script> / %%" in labels
    # Whitespace, newlines included, is collapsed and long text shortened.
    assert "\n" not in decode(menu).split("\n", 2)[2]
    assert decode(menu).endswith('…"')
    # The flow-wide error handler is drawn, dotted.
    assert ("any_error", "-.->", "", mermaid_id("sorry-node")) in found.edges
    (tmp_path / "awkward.mmd").write_text(out, encoding="utf-8")
    parse_with_mermaid(mermaid_parser, [tmp_path / "awkward.mmd"])


def test_shapes_follow_what_nodes_do(awkward_flow: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = graph_output(capsys, str(awkward_flow))
    assert f'{mermaid_id("check-balance")}("' in out  # voice: rounded
    assert 'n_end{"' in out  # condition: rhombus
    assert 'n_x_node(["' in out  # no exits: the call ends here
    assert f'{mermaid_id("sorry-node")}(["' in out
    assert f'{mermaid_id("check-balance")} -.->|"no input"|' in out  # error-ish paths dotted


def test_mermaid_ids_are_deterministic_and_safe() -> None:
    for node_id in ["greet", "check-balance", "end", "o", "x-ray", "a_b", "a-b", "A9-_-z"]:
        safe = mermaid_id(node_id)
        assert safe == mermaid_id(node_id)
        assert re.fullmatch(r"[nh]_[A-Za-z0-9_]+", safe)
    assert len({mermaid_id(i) for i in ["a-b", "a_b", "a--b", "a__b", "a-_b", "a_-b"]}) == 6


def test_escape_label_leaves_no_mermaid_syntax() -> None:
    text = 'a"b#c<d>e%f`g:h;i[j]k{l}m(n)o|p\nq&r'
    escaped = escape_label(text)
    assert re.fullmatch(r'(?:[^"#<>%`:;\[\]{}()|\n&]|#[A-Za-z0-9]+;)*', escaped)
    assert decode(f'"{escaped}"') == text


# ---------------------------------------------------------------------------
# DOT


def check_dot_structure(text: str) -> None:
    """Without Graphviz: every line is a statement we write, quotes balanced."""
    lines = text.rstrip("\n").split("\n")
    assert re.fullmatch(r'digraph "[^"]+" \{', lines[0]) and lines[-1] == "}"
    quoted = r'"(?:[^"\\\n]|\\.)*"'
    statement = re.compile(
        rf"^  (?:// .*|(?:graph|node|edge) \[.*\];|{quoted} \[.*\];|{quoted} -> {quoted}(?: \[.*\])?;)$"
    )
    for line in lines[1:-1]:
        assert statement.match(line), f"unexpected DOT line: {line!r}"
        assert re.fullmatch(rf'(?:[^"]|{quoted})*', line), f"unbalanced quotes: {line!r}"


@pytest.mark.parametrize("flow", [*EXAMPLES, None], ids=[*(p.stem for p in EXAMPLES), "awkward"])
def test_dot_output_is_valid(
    flow: Path | None, awkward_flow: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = flow or awkward_flow
    out = graph_output(capsys, str(target), "--format", "dot")
    check_dot_structure(out)
    graph = compile_file(target)
    for node in graph.nodes.values():
        assert f'"{node.id}" [label="{node.id}\\n{node.type}' in out
        for exit_ in node.exits:
            assert f'"{node.id}" -> "{exit_.target}"' in out
    if shutil.which("dot"):
        result = subprocess.run(["dot", "-Tsvg"], input=out, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_dot_keeps_backslashes_and_ampersands_literal(
    awkward_flow: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = graph_output(capsys, str(awkward_flow), "--format", "dot")
    assert '\\"Sorry <3 \\\\N \\\\l\\"' in out  # \N would otherwise become the node's name
    assert "&amp;amp;" in out
    if shutil.which("dot"):
        svg = subprocess.run(["dot", "-Tsvg"], input=out, capture_output=True, text=True, timeout=60).stdout
        assert "Sorry &lt;3 \\N \\l" in svg
        assert "&amp;amp;" in svg  # the author's '&amp;', as written


# ---------------------------------------------------------------------------
# --out and errors


def test_out_writes_the_file_and_markdown_gets_a_fence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = EXAMPLES[0]
    plain = tmp_path / "flow.mmd"
    out = graph_output(capsys, str(flow), "--out", str(plain))
    assert "Wrote the diagram" in out
    check_mermaid(plain.read_text(encoding="utf-8"))
    markdown = tmp_path / "flow.md"
    graph_output(capsys, str(flow), "--out", str(markdown))
    text = markdown.read_text(encoding="utf-8")
    assert text.startswith("```mermaid\nflowchart TD\n") and text.endswith("```\n")
    dot_file = tmp_path / "flow.dot"
    graph_output(capsys, str(flow), "--format", "dot", "--out", str(dot_file))
    assert dot_file.read_text(encoding="utf-8").startswith("digraph ")


@pytest.mark.parametrize("problem", ["missing-file", "bad-flow", "bad-out"])
def test_problems_are_explained_without_a_traceback(
    problem: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text("flow: f\nstart: a\nnodes:\n  a:\n    type: voice_spek\n", encoding="utf-8")
    argv = {
        "missing-file": ["graph", str(tmp_path / "nope.yaml")],
        "bad-flow": ["graph", str(flow)],
        "bad-out": ["graph", str(EXAMPLES[0]), "--out", str(tmp_path / "no" / "such" / "x.mmd")],
    }[problem]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    expected = {"missing-file": "no such file", "bad-flow": "voice_speak", "bad-out": "does not exist"}[
        problem
    ]
    assert expected in err


def test_plain_in_a_pipe(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    assert "\x1b[" not in graph_output(capsys, str(EXAMPLES[0]))


def test_nodes_and_edges_keep_file_order(capsys: pytest.CaptureFixture[str]) -> None:
    """Same flow, same text: a diagram checked into a repository only changes with the flow."""
    flow = str(EXAMPLES[0])
    assert graph_output(capsys, flow) == graph_output(capsys, flow)
