"""``voxflow diff OLD NEW``: what changed in the call, in words and as a marked diagram.

Each side is a flow file or ``REV:path`` read from git (``HEAD:flows/a.yaml``).
The exit code is 0 whether or not the call changed, like ``git diff``; with
``--exit-code`` it is 1 when the call changed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from typing import Any

from engine.authoring.flow_diff import (
    MISSING,
    ExitChange,
    FlowDiff,
    ValueChange,
    compare_flows,
    compile_flow_text,
    diff_diagram,
    is_long_text,
    show_value,
)
from engine.authoring.git_files import Source, read_source, sibling_sources
from engine.authoring.render.mermaid import render_mermaid
from engine.core.errors import VoxflowError
from engine.core.output import Painter
from engine.language.compile import INHERITED_SETTINGS, FlowGraph, FlowNode
from engine.language.registry import PluginRegistry, called_flow, default_registry

HELP = "Show what changed in a call between two versions of a flow (files or REV:path from git)."
LEGEND = "green: added, amber: changed, red dashed: removed"


@dataclass(frozen=True)
class Side:
    source: Source
    graph: FlowGraph


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "old",
        metavar="OLD",
        help="the old version: a file, or REV:path from git such as HEAD:flows/account-balance.yaml",
    )
    parser.add_argument("new", metavar="NEW", help="the new version: a file, or REV:path")
    parser.add_argument(
        "--format",
        choices=["text", "markdown", "json"],
        default="text",
        help="text for people (default), markdown for a pull request comment, json for tools",
    )
    parser.add_argument(
        "--no-diagram", action="store_true", help="leave out the Mermaid diagram of the new flow"
    )
    parser.add_argument(
        "--exit-code", action="store_true", help="exit with 1 when the call changed (as git diff --exit-code)"
    )


def run(args: argparse.Namespace) -> int:
    registry = default_registry()
    old = load_side(args.old, "old", registry)
    new = load_side(args.new, "new", registry)
    diff = compare_flows(old.graph, new.graph, registry)
    diagram = ""
    if diff.call_changed and not args.no_diagram:
        diagram = render_mermaid(diff_diagram(diff))
    if args.format == "json":
        print(json.dumps(diff_json(diff, old, new, diagram), indent=2, ensure_ascii=False))
    elif args.format == "markdown":
        sys.stdout.write(MarkdownReport(diff, old, new).render(diagram))
    else:
        sys.stdout.write(TextReport(diff, old, new, Painter(sys.stdout)).render(diagram))
    return 1 if args.exit_code and diff.call_changed else 0


def load_side(spec: str, side: str, registry: PluginRegistry) -> Side:
    """Read and compile one side; a problem names the side, so it is clear which one to fix."""
    try:
        source = read_source(spec)
    except VoxflowError as error:
        raise VoxflowError(f"the {side} side ({spec}): {error.message}") from None
    try:
        graph = compile_flow_text(source.text, source.name, registry)
    except VoxflowError as error:
        count = sum(1 for d in error.diagnostics if d.is_error) or 1
        noun = "problem" if count == 1 else "problems"
        raise VoxflowError(
            f"the {side} side ({spec}) has {count} {noun} (listed above), so it cannot be "
            f"compared. Fix {'it' if count == 1 else 'them'}, or compare another version.",
            error.diagnostics,
            error.sources,
        ) from None
    if any(called_flow(node.type, node.config, registry) for node in graph.nodes.values()):
        graph = with_subflows(graph, source, spec, registry)
    return Side(source, graph)


def with_subflows(graph: FlowGraph, source: Source, spec: str, registry: PluginRegistry) -> FlowGraph:
    """The flow compiled with the subflows beside it, as validate and the server compile it.

    Without them its version would differ from the one ``validate`` and the
    monitor show (a flow's version includes its subflows' versions).
    """
    import tempfile
    from pathlib import Path

    from engine.language.project import check_paths

    siblings = sibling_sources(spec)
    if not siblings:
        return graph
    with tempfile.TemporaryDirectory(prefix="voxflow-diff-") as folder:
        for name, text in siblings.items():
            (Path(folder) / name).write_text(text, encoding="utf-8")
        own = Path(folder) / "~this-side.yaml"
        own.write_text(source.text, encoding="utf-8")
        compiled = check_paths([folder], registry).flows.get(graph.flow_id)
    if compiled is None or compiled.source != str(own):
        return graph  # its subflows do not compile there: compare the file as it stands
    return compiled


# ---------------------------------------------------------------------------
# Words shared by the text and Markdown reports


def flow_change_words(change: ValueChange) -> str:
    """A flow-wide change as a sentence (without the +/-/~ mark)."""
    old = show_value(change.old, change.is_duration)
    new = show_value(change.new, change.is_duration)
    if change.path.startswith("variables."):
        name = change.path.split(".", 1)[1]
        if change.added:
            return f"variable {name} added (starts as {new})"
        if change.removed:
            return f"variable {name} removed (it started as {old})"
        return f"variable {name} now starts as {new} (was {old})"
    if change.path == "start":
        return f"the call now starts at '{change.new}' (was '{change.old}')"
    if change.path.startswith("subflows."):
        return f"the flow {change.path.split('.', 1)[1]} it calls: version {old} → {new}"
    if change.added:
        return f"{change.path} set to {new} (new)"
    if change.removed:
        return f"{change.path} removed (was {old})"
    text = f"{change.path}: {old} → {new}"
    if change.path.startswith("settings.") and change.path.split(".", 1)[1] in INHERITED_SETTINGS:
        text += " (for every node that does not set its own)"
    return text


def mark(change: ValueChange) -> str:
    return "+" if change.added else "-" if change.removed else "~"


def version_words(diff: FlowDiff) -> str:
    return (
        f"The call changed (version {diff.old.short_version} → {diff.new.short_version}); "
        "calls that start after it is deployed follow the new flow."
    )


def calls_subflows(diff: FlowDiff) -> list[str]:
    """Flows called by either side; they are not compared, and we say so."""
    called = {
        flow
        for graph in (diff.old, diff.new)
        for node in graph.nodes.values()
        if (flow := called_flow(node.type, node.config)) is not None
    }
    return sorted(called)


def no_change_words(diff: FlowDiff, old: Side, new: Side) -> str:
    if old.source.text == new.source.text:
        return "No change in what the call does: the two files are identical."
    text = (
        "No change in what the call does: the files differ only in formatting, comments or the order of keys."
    )
    return text


# ---------------------------------------------------------------------------
# Text


class TextReport:
    def __init__(self, diff: FlowDiff, old: Side, new: Side, paint: Painter) -> None:
        self.diff, self.old, self.new, self.paint = diff, old, new, paint
        self.lines: list[str] = []

    def render(self, diagram: str) -> str:
        diff, paint = self.diff, self.paint
        self.lines = [
            paint(f"voxflow diff: {diff.new.flow_id}", "bold"),
            f"  old: {self.old.source.name}  (version {diff.old.short_version})",
            f"  new: {self.new.source.name}  (version {diff.new.short_version})",
            "",
        ]
        if not diff.call_changed:
            self.lines.append(paint(no_change_words(self.diff, self.old, self.new), "green"))
            return "\n".join(self.lines) + "\n"
        self._nodes()
        self._exits()
        self._flow()
        if not diff.listed:  # the hash saw something our lists do not name
            self.lines += ["The compiled flows differ in a way not listed here.", ""]
        self.lines.append(paint(version_words(diff), "yellow", "bold"))
        called = calls_subflows(diff)
        if called:
            self.lines.append(
                f"(Each side is compiled alone; the flows it calls, {', '.join(called)}, are not compared.)"
            )
        if diagram:
            self.lines += [
                "",
                paint(f"Diagram of the new flow, as Mermaid ({LEGEND}):", "bold"),
                "```mermaid",
                diagram.rstrip("\n"),
                "```",
            ]
        return "\n".join(self.lines) + "\n"

    def _heading(self, text: str) -> None:
        if self.lines and self.lines[-1]:
            self.lines.append("")
        self.lines.append(self.paint(text, "bold"))

    def _nodes(self) -> None:
        diff, paint = self.diff, self.paint
        if diff.added:
            self._heading("Nodes added")
            for node in diff.added:
                self._node_summary(node, "+", "green")
        if diff.removed:
            self._heading("Nodes removed")
            for node in diff.removed:
                self._node_summary(node, "-", "red")
        if diff.changed:
            self._heading("Nodes changed")
            for change in diff.changed:
                self.lines.append(paint(f"  ~ {change.id} ({change.new.type})", "yellow"))
                for field in change.fields:
                    self._field(field)
        if diff.added or diff.removed or diff.changed:
            self.lines.append("")

    def _node_summary(self, node: FlowNode, sign: str, colour: str) -> None:
        self.lines.append(self.paint(f"  {sign} {node.id} ({node.type})", colour))
        for detail in self.diff.details.get(node.id, ()):
            self.lines.append(f"      {detail.path}: {show_value(detail.new, detail.is_duration)}")
        if node.exits:
            ways = ", ".join(f"{e.label or 'next'} → {e.target}" for e in node.exits)
            self.lines.append(f"      goes to: {ways}")

    def _field(self, field: ValueChange) -> None:
        paint = self.paint
        if field.path == "type":
            self.lines.append(f"      type: {field.old} → {field.new}")
            return
        old = show_value(field.old, field.is_duration)
        new = show_value(field.new, field.is_duration)
        if field.added:
            self.lines.append(f"      {paint('+', 'green')} {field.path}: {paint(new, 'green')}")
        elif field.removed:
            self.lines.append(f"      {paint('-', 'red')} {field.path}: {paint(old, 'red')} (removed)")
        elif is_long_text(field):
            self.lines += [
                f"      {field.path}:",
                f"        {paint('old: ' + old, 'red')}",
                f"        {paint('new: ' + new, 'green')}",
            ]
        else:
            self.lines.append(f"      {field.path}: {paint(old, 'red')} → {paint(new, 'green')}")

    def _exits(self) -> None:
        if not self.diff.exits:
            return
        self._heading("Paths changed")
        colours = {"added": ("+", "green"), "removed": ("-", "red"), "retargeted": ("~", "yellow")}
        for change in self.diff.exits:
            sign, colour = colours[change.kind]
            self.lines.append(self.paint(f"  {sign} {change.sentence()}", colour))
        self.lines.append("")

    def _flow(self) -> None:
        if not self.diff.flow:
            return
        self._heading("Flow")
        colours = {"+": "green", "-": "red", "~": "yellow"}
        for change in self.diff.flow:
            sign = mark(change)
            if is_long_text(change) and not (change.added or change.removed):
                self.lines += [
                    self.paint(f"  ~ {change.path}:", "yellow"),
                    f"      old: {show_value(change.old)}",
                    f"      new: {show_value(change.new)}",
                ]
            else:
                line = f"  {sign} {flow_change_words(change)}"
                self.lines.append(self.paint(line, colours[sign]))
        self.lines.append("")


# ---------------------------------------------------------------------------
# Markdown (a pull request comment)


def code(text: str) -> str:
    """Inline code that survives backticks in ``text``."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def md_escape(text: str) -> str:
    """Plain text in Markdown: only what would format, link or become HTML is escaped.

    Our text never starts a line (it follows '- '), so '#', '+', '-' and '1.'
    are safe; '_' only formats at a word's edge.
    """
    text = re.sub(r"([\\`*\[\]<>~&])", r"\\\1", text.replace("\n", " "))
    return re.sub(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])", r"\\_", text)


def diff_block(old: str, new: str) -> list[str]:
    """Old and new text as a ```diff block, GitHub colours it red and green."""
    body = [f"- {line}" for line in old.splitlines() or [""]]
    body += [f"+ {line}" for line in new.splitlines() or [""]]
    longest = max((len(run) for run in re.findall(r"`+", old + new)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}diff", *body, fence]


class MarkdownReport:
    def __init__(self, diff: FlowDiff, old: Side, new: Side) -> None:
        self.diff, self.old, self.new = diff, old, new
        self.lines: list[str] = []

    def render(self, diagram: str) -> str:
        diff = self.diff
        state = "changed" if diff.call_changed else "no change"
        self.lines = [
            f"### Call flow {code(diff.new.flow_id)}: {state}",
            "",
            f"{code(self.old.source.name)} → {code(self.new.source.name)} · "
            + (
                f"version {code(diff.old.short_version)} → {code(diff.new.short_version)}"
                if diff.version_changed
                else f"version {code(diff.new.short_version)}"
            ),
            "",
        ]
        if not diff.call_changed:
            self.lines.append(no_change_words(self.diff, self.old, self.new))
            return "\n".join(self.lines) + "\n"
        self._section("Nodes added", [self._node(n, "added") for n in diff.added])
        self._section("Nodes removed", [self._node(n, "removed") for n in diff.removed])
        self._section("Nodes changed", [self._changed(c.id, c.new.type, c.fields) for c in diff.changed])
        self._section("Paths changed", [[f"- {self._exit(e)}"] for e in diff.exits])
        self._section("Flow", [self._flow_item(c) for c in diff.flow])
        if not diff.listed:
            self.lines += ["The compiled flows differ in a way not listed here.", ""]
        called = calls_subflows(diff)
        if called:
            self.lines += [
                f"_Each side is compiled alone; the flows it calls "
                f"({', '.join(code(c) for c in called)}) are not compared._",
                "",
            ]
        if diagram:
            self.lines += ["```mermaid", diagram.rstrip("\n"), "```", "", f"<sub>{LEGEND}</sub>"]
        return "\n".join(self.lines).rstrip("\n") + "\n"

    def _section(self, title: str, items: list[list[str]]) -> None:
        if items:
            self.lines += [f"**{title}**", ""]
            for item in items:
                self.lines += item
            self.lines.append("")

    def _node(self, node: FlowNode, verb: str) -> list[str]:
        item = [f"- {code(node.id)} ({md_escape(node.type)}) {verb}"]
        for detail in self.diff.details.get(node.id, ()):
            value = show_value(detail.new, detail.is_duration)
            item.append(f"  - {code(detail.path)}: {code(value)}")
        if node.exits:
            ways = ", ".join(f"{md_escape(e.label or 'next')} → {code(e.target)}" for e in node.exits)
            item.append(f"  - goes to: {ways}")
        return item

    def _changed(self, node_id: str, node_type: str, fields: tuple[ValueChange, ...]) -> list[str]:
        item = [f"- {code(node_id)} ({md_escape(node_type)})"]
        for field in fields:
            old = show_value(field.old, field.is_duration)
            new = show_value(field.new, field.is_duration)
            if field.path == "type":
                item.append(f"  - type: {code(str(field.old))} → {code(str(field.new))}")
            elif field.added:
                item.append(f"  - {code(field.path)} added: {code(new)}")
            elif field.removed:
                item.append(f"  - {code(field.path)} removed (was {code(old)})")
            elif is_long_text(field) and isinstance(field.old, str) and isinstance(field.new, str):
                item.append(f"  - {code(field.path)}:")
                item += [f"    {line}" for line in diff_block(field.old, field.new)]
            else:
                item.append(f"  - {code(field.path)}: {code(old)} → {code(new)}")
        return item

    @staticmethod
    def _exit(change: ExitChange) -> str:
        where = f"{code(change.node)}: {md_escape(change.what)}"
        if change.kind == "retargeted":
            return f"{where} now goes to {code(str(change.new_target))} (was {code(str(change.old_target))})"
        if change.kind == "added":
            return f"{where} goes to {code(str(change.new_target))} (new)"
        return f"{where} no longer goes to {code(str(change.old_target))} (removed)"

    @staticmethod
    def _flow_item(change: ValueChange) -> list[str]:
        if is_long_text(change) and isinstance(change.old, str) and isinstance(change.new, str):
            return [f"- {code(change.path)}:", *[f"  {line}" for line in diff_block(change.old, change.new)]]
        words = flow_change_words(change)
        if change.path in words and words.startswith(change.path):  # 'settings.voice: ...'
            return [f"- {code(change.path)}{md_escape(words[len(change.path) :])}"]
        return [f"- {md_escape(words)}"]


# ---------------------------------------------------------------------------
# JSON


def diff_json(diff: FlowDiff, old: Side, new: Side, diagram: str) -> dict[str, Any]:
    """Everything in the report, for tools. A value that is not there has no key."""
    report: dict[str, Any] = {
        "old": {"source": old.source.name, "flow": diff.old.flow_id, "version": diff.old.version},
        "new": {"source": new.source.name, "flow": diff.new.flow_id, "version": diff.new.version},
        "call_changed": diff.call_changed,
        "version_changed": diff.version_changed,
        "nodes": {
            "added": [_node_json(n) for n in diff.added],
            "removed": [_node_json(n) for n in diff.removed],
            "changed": [
                {"id": c.id, "type": c.new.type, "changes": [_value_json(f) for f in c.fields]}
                for c in diff.changed
            ],
        },
        "exits": [_exit_json(e) for e in diff.exits],
        "flow": [_value_json(c) for c in diff.flow],
    }
    if diagram:
        report["mermaid"] = diagram
    return report


def _node_json(node: FlowNode) -> dict[str, Any]:
    return {
        "id": node.id,
        "type": node.type,
        "config": node.config,
        "exits": [{"exit": e.name, "label": e.label, "target": e.target} for e in node.exits],
    }


def _value_json(change: ValueChange) -> dict[str, Any]:
    result: dict[str, Any] = {"path": change.path}
    for key, value in (("old", change.old), ("new", change.new)):
        if value is not MISSING:
            result[key] = value
    if change.is_duration:
        result["unit"] = "seconds"
    return result


def _exit_json(change: ExitChange) -> dict[str, Any]:
    result: dict[str, Any] = {"node": change.node, "change": change.kind, "description": change.sentence()}
    for key, exit_ in (("old", change.old), ("new", change.new)):
        if exit_ is not None:
            result[key] = {"exit": exit_.name, "label": exit_.label, "target": exit_.target}
    return result
