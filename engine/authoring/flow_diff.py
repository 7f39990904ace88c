"""What changed in a call between two versions of a flow.

Two compiled :class:`FlowGraph` values are compared, not two texts, so
comments, quoting, key order and blank lines never show up as changes, and
everything that does show up changes what a caller hears or where the call
goes. :func:`compare_flows` returns a :class:`FlowDiff`; the sentences and the
marked diagram are built from it here, and ``voxflow diff`` lays them out.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from engine.authoring.render import (
    Diagram,
    DiagramEdge,
    DiagramNode,
    Status,
    diagram_edge,
    diagram_node,
)
from engine.core.errors import VoxflowError
from engine.language.compile import (
    INHERITED_SETTINGS,
    Exit,
    FlowGraph,
    FlowNode,
    compile_flow,
)
from engine.language.fields import find_fields
from engine.language.load import load_text
from engine.language.project import check_flow_document
from engine.language.registry import PluginRegistry, default_registry
from engine.language.schema import flow_schema
from engine.language.sourcemap import DocPath, format_path

# Flow settings that are lengths of time (compiled to seconds, shown as '5s').
_DURATION_SETTINGS = ("no_input_timeout", "max_call_duration")
_EXIT_NAME = re.compile(r"^(?P<head>[A-Za-z_][A-Za-z0-9_]*)(?:\[(?P<index>\d+)\])?")
_EXIT_WORDS = {
    "next": "next step",
    "else": '"else"',
    "no_input": "no input",
    "no_match": "no match",
    "on_error": "on error",
    "on_timeout": "on timeout",
}


class _Missing:
    """Stands for a value that is not there at all (unlike an explicit null)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class ValueChange:
    """One value that differs. ``path`` is as a reader would type it (``options[1].phrases``)."""

    path: str
    old: Any
    new: Any
    is_duration: bool = False

    @property
    def added(self) -> bool:
        return self.old is MISSING

    @property
    def removed(self) -> bool:
        return self.new is MISSING


@dataclass(frozen=True)
class ExitChange:
    """A way out of a node that appeared, disappeared or now leads somewhere else."""

    node: str
    kind: Literal["added", "removed", "retargeted"]
    what: str  # how a reader names it: 'option "2 / agent"', 'next step', 'on error'
    old: Exit | None  # None when added
    new: Exit | None  # None when removed

    @property
    def old_target(self) -> str | None:
        return self.old.target if self.old else None

    @property
    def new_target(self) -> str | None:
        return self.new.target if self.new else None

    def sentence(self) -> str:
        if self.kind == "retargeted":
            return f"{self.node}: {self.what} now goes to '{self.new_target}' (was '{self.old_target}')"
        if self.kind == "added":
            return f"{self.node}: {self.what} goes to '{self.new_target}' (new)"
        return f"{self.node}: {self.what} no longer goes to '{self.old_target}' (removed)"


@dataclass(frozen=True)
class NodeChange:
    """A node in both flows whose type or settings differ (exits are in FlowDiff.exits)."""

    id: str
    old: FlowNode
    new: FlowNode
    fields: tuple[ValueChange, ...]


@dataclass(frozen=True)
class FlowDiff:
    old: FlowGraph
    new: FlowGraph
    added: tuple[FlowNode, ...]
    removed: tuple[FlowNode, ...]
    changed: tuple[NodeChange, ...]
    exits: tuple[ExitChange, ...]
    flow: tuple[ValueChange, ...]  # flow id, description, start, settings, variables...
    # What each added or removed node sets (exits and values from the flow's settings left out).
    details: Mapping[str, tuple[ValueChange, ...]] = field(default_factory=dict)

    @property
    def call_changed(self) -> bool:
        """Whether a caller could notice: the version hash covers exactly what a call does."""
        return self.old.version != self.new.version

    @property
    def version_changed(self) -> bool:
        return self.old.version != self.new.version

    @property
    def listed(self) -> bool:
        return bool(self.added or self.removed or self.changed or self.exits or self.flow)

    def changed_node_ids(self) -> set[str]:
        return {c.id for c in self.changed} | {e.node for e in self.exits}


# ---------------------------------------------------------------------------
# Loading one side


def compile_flow_text(text: str, display_name: str, registry: PluginRegistry) -> FlowGraph:
    """YAML text → FlowGraph, or a VoxflowError carrying every problem found.

    Subflows are not looked up: each side is compared as the file itself says.
    """
    document = load_text(text, display_name)
    problems = check_flow_document(document, registry)
    if any(d.is_error for d in problems):
        raise VoxflowError.from_diagnostics(problems, {display_name: text})
    return compile_flow(document, registry)


# ---------------------------------------------------------------------------
# Comparing


def compare_flows(old: FlowGraph, new: FlowGraph, registry: PluginRegistry | None = None) -> FlowDiff:
    registry = registry or default_registry()
    durations = _DurationFields(registry)
    added = tuple(node for node_id, node in new.nodes.items() if node_id not in old.nodes)
    removed = tuple(node for node_id, node in old.nodes.items() if node_id not in new.nodes)
    changed: list[NodeChange] = []
    exits: list[ExitChange] = []
    for node_id, new_node in new.nodes.items():
        old_node = old.nodes.get(node_id)
        if old_node is None:
            continue
        fields = node_field_changes(old, new, old_node, new_node, durations)
        if fields:
            changed.append(NodeChange(node_id, old_node, new_node, tuple(fields)))
        exits += exit_changes(old_node, new_node)
    details = {node.id: node_details(new, node, durations) for node in added}
    details |= {node.id: node_details(old, node, durations) for node in removed}
    return FlowDiff(
        old, new, added, removed, tuple(changed), tuple(exits), tuple(flow_changes(old, new)), details
    )


def flow_changes(old: FlowGraph, new: FlowGraph) -> list[ValueChange]:
    """Changes to the flow as a whole: its id, start, settings, variables..."""
    changes: list[ValueChange] = []
    for name in ("flow_id", "description", "start", "error_handler"):
        before, after = getattr(old, name), getattr(new, name)
        if not same(before, after):
            label = "flow" if name == "flow_id" else name
            changes.append(ValueChange(label, _absent_if_none(before), _absent_if_none(after)))
    for name in _union(old.settings, new.settings):
        before, after = old.settings.get(name, MISSING), new.settings.get(name, MISSING)
        if not same(before, after):
            changes.append(
                ValueChange(f"settings.{name}", before, after, is_duration=name in _DURATION_SETTINGS)
            )
    for name in _union(old.variables, new.variables):
        before, after = old.variables.get(name, MISSING), new.variables.get(name, MISSING)
        if not same(before, after):
            changes.append(ValueChange(f"variables.{name}", before, after))
    for name in _union(old.subflows, new.subflows):
        before_sub, after_sub = old.subflows.get(name), new.subflows.get(name)
        before = before_sub.short_version if before_sub else MISSING
        after = after_sub.short_version if after_sub else MISSING
        if before != after:
            changes.append(ValueChange(f"subflows.{name}", before, after))
    return changes


def node_field_changes(
    old_graph: FlowGraph,
    new_graph: FlowGraph,
    old: FlowNode,
    new: FlowNode,
    durations: _DurationFields,
) -> list[ValueChange]:
    """Type and config changes of one node, leaving out its exits (reported as exits)."""
    changes: list[ValueChange] = []
    if old.type != new.type:
        changes.append(ValueChange("type", old.type, new.type))
    if old.max_visits != new.max_visits:
        changes.append(ValueChange("max_visits", old.max_visits, new.max_visits))
    skip = _Skip({e.name for e in old.exits}, {e.name for e in new.exits})
    old_config = _without_inherited(old.config, old_graph.settings, new.config, new_graph.settings)
    new_config = _without_inherited(new.config, new_graph.settings, old.config, old_graph.settings)
    duration_paths = durations.paths(old) | durations.paths(new)
    for change in diff_values(old_config, new_config, (), (), skip):
        changes.append(
            ValueChange(change.path, change.old, change.new, is_duration=change.path in duration_paths)
        )
    return changes


def node_details(graph: FlowGraph, node: FlowNode, durations: _DurationFields) -> tuple[ValueChange, ...]:
    """What a node sets, as changes from nothing: shown for added and removed nodes."""
    exits = {e.name for e in node.exits}
    config = _without_inherited(node.config, graph.settings, node.config, graph.settings)
    duration_paths = durations.paths(node)
    details = []
    for key, value in config.items():
        kept = _without_exits(value, (key,), lambda p: format_path(p) in exits)
        if kept is not MISSING:
            details.append(ValueChange(key, MISSING, kept, is_duration=key in duration_paths))
    return tuple(details)


def _without_inherited(
    config: Mapping[str, Any],
    settings: Mapping[str, Any],
    other: Mapping[str, Any],
    other_settings: Mapping[str, Any],
) -> dict[str, Any]:
    """The config without settings both sides simply take from their flow.

    The compiler copies the flow's voice, language... into every node; a change
    to the flow's setting is reported once, under settings, not once per node.
    """
    result = dict(config)
    for name in INHERITED_SETTINGS:
        if same(config.get(name, MISSING), settings.get(name, MISSING)) and same(
            other.get(name, MISSING), other_settings.get(name, MISSING)
        ):
            result.pop(name, None)
    return result


@dataclass(frozen=True)
class _Skip:
    """Exit paths, on each side, that diff_values leaves to exit_changes."""

    old: set[str]
    new: set[str]

    def __call__(self, old_path: DocPath, new_path: DocPath) -> bool:
        return format_path(old_path) in self.old or format_path(new_path) in self.new


def diff_values(old: Any, new: Any, old_path: DocPath, new_path: DocPath, skip: _Skip) -> list[ValueChange]:
    """Every leaf-level difference between two JSON-like values.

    Mappings are compared key by key; lists of mappings (options, no_input
    handlers, branches) are aligned first, so inserting one option shows as
    one added option rather than every later one changed. Other lists (phrases)
    are compared whole: ``[a, b] → [a, b, c]`` reads better than a list of indexes.
    """
    if skip(old_path, new_path) or same(old, new):
        return []
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        changes: list[ValueChange] = []
        for key in _union(old, new):
            changes += diff_values(
                old.get(key, MISSING), new.get(key, MISSING), old_path + (key,), new_path + (key,), skip
            )
        return changes
    if _is_list_of_mappings(old) and _is_list_of_mappings(new):
        return _diff_item_lists(old, new, old_path, new_path, skip)
    # A value that appeared or went away is shown without the exits inside it.
    if old is not MISSING:
        old = _without_exits(old, old_path, lambda p: skip(p, ()))
    if new is not MISSING:
        new = _without_exits(new, new_path, lambda p: skip((), p))
    if old is MISSING and new is MISSING:
        return []
    return [ValueChange(format_path(new_path if new is not MISSING else old_path), old, new)]


def _diff_item_lists(
    old: Sequence[Any], new: Sequence[Any], old_path: DocPath, new_path: DocPath, skip: _Skip
) -> list[ValueChange]:
    # Align on the items without their exits: an option that only changed where
    # it goes is the same option (its new target is reported as an exit).
    old_keys = [
        canonical(_without_exits(item, old_path + (i,), lambda p: skip(p, ()))) for i, item in enumerate(old)
    ]
    new_keys = [
        canonical(_without_exits(item, new_path + (j,), lambda p: skip((), p))) for j, item in enumerate(new)
    ]
    matcher = difflib.SequenceMatcher(a=old_keys, b=new_keys, autojunk=False)
    changes: list[ValueChange] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        pairs = _pair_items(old, new, range(i1, i2), range(j1, j2))
        for i, j in pairs:
            changes += diff_values(old[i], new[j], old_path + (i,), new_path + (j,), skip)
        for i in sorted(set(range(i1, i2)) - {i for i, _ in pairs}):
            item = _without_exits(old[i], old_path + (i,), lambda p: skip(p, ()))
            if item is not MISSING:
                changes.append(ValueChange(format_path(old_path + (i,)), item, MISSING))
        for j in sorted(set(range(j1, j2)) - {j for _, j in pairs}):
            item = _without_exits(new[j], new_path + (j,), lambda p: skip((), p))
            if item is not MISSING:
                changes.append(ValueChange(format_path(new_path + (j,)), MISSING, item))
    return changes


def _pair_items(
    old: Sequence[Any], new: Sequence[Any], old_range: range, new_range: range
) -> list[tuple[int, int]]:
    """Which changed items are one item edited: same menu key, else same position."""
    if len(old_range) == len(new_range):
        return list(zip(old_range, new_range, strict=True))
    new_by_key = {_item_key(new[j]): j for j in new_range if _item_key(new[j]) is not None}
    return [
        (i, new_by_key[_item_key(old[i])])
        for i in old_range
        if _item_key(old[i]) is not None and _item_key(old[i]) in new_by_key
    ]


def _item_key(item: Any) -> str | None:
    return str(item["key"]) if isinstance(item, Mapping) and "key" in item else None


def _without_exits(value: Any, path: DocPath, is_exit: Callable[[DocPath], bool]) -> Any:
    """``value`` without its exit fields (those are listed as exits); MISSING if nothing is left.

    Mappings left empty disappear from lists: ``no_input: [{reprompt: ..}, {next: x}]``
    shows as ``[{reprompt: ..}]``.
    """
    if is_exit(path):
        return MISSING
    if isinstance(value, Mapping):
        kept = {}
        for key, item in value.items():
            stripped = _without_exits(item, path + (key,), is_exit)
            if stripped is not MISSING:
                kept[key] = stripped
        return kept if kept or not value else MISSING
    if isinstance(value, list):
        items = [_without_exits(item, path + (i,), is_exit) for i, item in enumerate(value)]
        kept_items = [item for item in items if item is not MISSING]
        return kept_items if kept_items or not value else MISSING
    return value


def exit_changes(old: FlowNode, new: FlowNode) -> list[ExitChange]:
    """Exits matched by what they mean (a menu option by its key), not by position."""
    old_exits = exit_identities(old)
    new_exits = exit_identities(new)
    changes: list[ExitChange] = []
    for identity, new_exit in new_exits.items():
        old_exit = old_exits.get(identity)
        if old_exit is None:
            changes.append(ExitChange(new.id, "added", exit_words(new, new_exit), None, new_exit))
        elif old_exit.target != new_exit.target:
            changes.append(ExitChange(new.id, "retargeted", exit_words(new, new_exit), old_exit, new_exit))
    for identity, old_exit in old_exits.items():
        if identity not in new_exits:
            changes.append(ExitChange(old.id, "removed", exit_words(old, old_exit), old_exit, None))
    return changes


def exit_identities(node: FlowNode) -> dict[str, Exit]:
    """Each exit under a name that survives reordering where order does not matter.

    Menu options are matched by their key, since callers press a key, not a
    position; a condition's branches by position, since order decides which
    one wins. Anything else by its field name.
    """
    found: dict[str, Exit] = {}
    for exit_ in node.exits:
        identity = _exit_identity(node, exit_)
        count = 2
        unique = identity
        while unique in found:  # e.g. two options without keys and the same phrases
            unique, count = f"{identity}#{count}", count + 1
        found[unique] = exit_
    return found


def _exit_identity(node: FlowNode, exit_: Exit) -> str:
    match = _EXIT_NAME.match(exit_.name)
    if match and match["head"] == "options" and match["index"] is not None:
        option = _list_item(node.config.get("options"), int(match["index"]))
        if "key" in option:
            rest = exit_.name[match.end() :]
            return f"options[key={option['key']}]{rest}"
    return exit_.name


def exit_words(node: FlowNode, exit_: Exit) -> str:
    """How a reader names an exit: 'option "2 / agent"', 'no input', 'branch "x > 1"'."""
    match = _EXIT_NAME.match(exit_.name)
    head = match["head"] if match else exit_.name
    if head == "options":
        return f'option "{exit_.label}"' if exit_.label else f"option {exit_.name}"
    if head == "branches" and match and match["index"] is not None:
        return f"branch {int(match['index']) + 1} (if {exit_.label})"
    return _EXIT_WORDS.get(head, exit_.name)


def _list_item(value: Any, index: int) -> Mapping[str, Any]:
    if isinstance(value, list) and 0 <= index < len(value) and isinstance(value[index], Mapping):
        return value[index]
    return {}


class _DurationFields:
    """Which fields of a node type are lengths of time, from its schema (cached per type)."""

    def __init__(self, registry: PluginRegistry) -> None:
        self._registry = registry
        self._schema: Mapping[str, Any] | None = None

    def paths(self, node: FlowNode) -> set[str]:
        if node.type not in self._registry:
            return set()
        if self._schema is None:
            self._schema = flow_schema(self._registry)
        type_schema = self._schema["$defs"]["node_types"].get(node.type, {})
        return {
            format_path(ref.path)
            for ref in find_fields(self._schema, type_schema, node.config)
            if ref.kind == "duration"
        }


# ---------------------------------------------------------------------------
# Values for people


def canonical(value: Any) -> str:
    """One text per value: key order ignored, ``1``, ``1.0`` and ``true`` kept apart."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr, ensure_ascii=False)


def same(old: Any, new: Any) -> bool:
    """Equal as the version hash sees it (so 1, 1.0 and true differ, as they do there)."""
    if old is MISSING or new is MISSING:
        return old is new
    return canonical(old) == canonical(new)


def show_value(value: Any, is_duration: bool = False) -> str:
    """A value as a flow author would recognise it: strings quoted, lists in brackets."""
    if value is MISSING:
        return "(not set)"
    if value is None:
        return "(empty)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if is_duration and isinstance(value, (int, float)):
        return format_seconds(float(value))
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {show_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(show_value(v) for v in value) + "]"
    return str(value)


def format_seconds(seconds: float) -> str:
    """Seconds the way flows write them: 90 → '1m30s', 0.5 → '500ms'."""
    if seconds < 1 and seconds != 0:
        return f"{round(seconds * 1000)}ms"
    whole = int(seconds)
    if whole != seconds:
        return f"{seconds:g}s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(hours, "h"), (minutes, "m"), (secs, "s")]
    return "".join(f"{amount}{unit}" for amount, unit in parts if amount) or "0s"


def is_long_text(change: ValueChange) -> bool:
    """Prompts and messages are shown whole, on lines of their own."""
    return any(
        isinstance(value, str) and (len(value) > 40 or "\n" in value) for value in (change.old, change.new)
    )


def _absent_if_none(value: Any) -> Any:
    return MISSING if value is None or value == "" else value


def _is_list_of_mappings(value: Any) -> bool:
    return isinstance(value, list) and any(isinstance(item, Mapping) for item in value)


def _union(first: Iterable[str], second: Iterable[str]) -> list[str]:
    """Keys of both, in first-seen order (the order of the files)."""
    return list(dict.fromkeys([*first, *second]))


# ---------------------------------------------------------------------------
# The diagram of the new flow, with the changes marked


def diff_diagram(diff: FlowDiff) -> Diagram:
    """The new flow, plus the removed nodes and paths drawn dashed, everything marked."""
    added_ids = {node.id for node in diff.added}
    touched = diff.changed_node_ids()
    exit_status = _exit_statuses(diff)
    nodes: list[DiagramNode] = []
    edges: list[DiagramEdge] = []
    for node in diff.new.nodes.values():
        status: Status = "added" if node.id in added_ids else ("changed" if node.id in touched else "same")
        nodes.append(diagram_node(node, status))
        for exit_ in node.exits:
            edge_status = exit_status.get((node.id, exit_.name), "same")
            edges.append(diagram_edge(node, exit_, "added" if status == "added" else edge_status))
    for node in diff.removed:
        nodes.append(diagram_node(node, "removed"))
        edges += [diagram_edge(node, exit_, "removed") for exit_ in node.exits]
    for change in diff.exits:  # the old way of a removed or retargeted exit, drawn dashed
        if change.old is not None:
            edges.append(diagram_edge(diff.old.nodes[change.node], change.old, "removed"))
    return Diagram(
        flow_id=diff.new.flow_id,
        version=diff.new.short_version,
        start=diff.new.start,
        nodes=tuple(nodes),
        edges=tuple(edges),
        error_handler=diff.new.error_handler,
        start_status="changed" if diff.old.start != diff.new.start else "same",
        error_handler_status="same"
        if diff.old.error_handler == diff.new.error_handler
        else ("added" if diff.old.error_handler is None else "changed"),
    )


def _exit_statuses(diff: FlowDiff) -> dict[tuple[str, str], Status]:
    """(node id, exit name in the new flow) → how that arrow is marked."""
    statuses: dict[tuple[str, str], Status] = {}
    for change in diff.exits:
        if change.new is not None:
            statuses[(change.node, change.new.name)] = "added" if change.kind == "added" else "changed"
    return statuses
