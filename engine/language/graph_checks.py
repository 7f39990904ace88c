"""Stage 2, ``validate`` (continued): checks that need the whole flow.

The schema checks one value at a time; these look at the flow as a graph:
exits to nodes that do not exist, nodes no call can reach, places the call
can never end from, loops nothing bounds, menus with two options on one key,
templates that do not parse, and variables used before anything sets them.
They tolerate values the schema has already rejected, so every problem of a
file is reported in one run.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.core.errors import Diagnostic, Severity
from engine.core.suggest import as_sentence, did_you_mean, quoted_list
from engine.language.call_variables import AUTOMATIC_VARIABLES
from engine.language.fields import find_fields, iter_strings
from engine.language.load import LoadedDocument
from engine.language.registry import PluginRegistry, called_flow
from engine.language.schema import ID_PATTERN, flow_schema
from engine.language.sourcemap import DocPath, format_path
from engine.language.template_messages import (
    explain_condition,
    explain_template,
    problem_offset,
    template_info,
)
from engine.language.templates import MAX_OUTPUT, TemplateInfo, TemplateProblem, environment, render

_USUAL_EXIT_FIELDS = frozenset({"next", "on_error", "on_timeout", "else"})
# Fields whose values name variables the node sets.
_SAVE_FIELDS = ("save_as",)


@dataclass
class _Node:
    id: str
    type: str
    data: Mapping[str, Any]
    exits: list[tuple[DocPath, str]] = field(default_factory=list)  # (path in node, target)
    expressions: list[tuple[DocPath, str]] = field(default_factory=list)
    waits: bool = False
    # An exit the schema check rejects (missing, empty, not a node id): until it
    # is fixed, we cannot tell which nodes the call reaches.
    broken_exit: bool = False


@dataclass
class _Checker:
    document: LoadedDocument
    registry: PluginRegistry
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def report(
        self,
        path: DocPath,
        message: str,
        hint: str = "",
        *,
        code: str,
        warning: bool = False,
        on_key: bool = False,
        at_text: tuple[str, int | None] | None = None,
    ) -> None:
        line, column = self.document.source_map.locate(path, at_key=on_key)
        if at_text is not None and not on_key:
            column = _column_of(self.document, line, column, *at_text)
        self.diagnostics.append(
            Diagnostic(
                self.document.file,
                line,
                column,
                format_path(path),
                message,
                hint,
                Severity.WARNING if warning else Severity.ERROR,
                code,
            )
        )


def _column_of(document: LoadedDocument, line: int, column: int, text: str, offset: int | None) -> int:
    """The column of ``text[offset:]`` when the value is written on its line as it reads."""
    if offset is None or not 0 < line <= len(document.source_map.lines):
        return column
    fragment = text[offset : offset + 12].split("\n")[0]
    source = document.source_map.lines[line - 1]
    found = source.find(fragment, max(0, column - 1)) if fragment else -1
    return found + 1 if found >= 0 else column


def graph_diagnostics(document: LoadedDocument, registry: PluginRegistry) -> list[Diagnostic]:
    """Every graph-level problem in a flow document (schema problems excluded)."""
    data = document.data
    if not isinstance(data, Mapping) or not isinstance(data.get("nodes"), Mapping):
        return []
    checker = _Checker(document, registry)
    nodes = _collect_nodes(data["nodes"], registry)
    _check_targets(checker, data, nodes)
    _check_reachability(checker, data, nodes)
    stuck = _check_ending(checker, data, nodes)
    _check_loops(checker, nodes, stuck)
    _check_handlers(checker, nodes)
    _check_menu_keys(checker, nodes)
    _check_templates(checker, data, nodes)
    checker.diagnostics.sort(key=lambda d: (d.line, d.column))
    return checker.diagnostics


def _collect_nodes(raw_nodes: Mapping[str, Any], registry: PluginRegistry) -> dict[str, _Node]:
    schema = flow_schema(registry)
    nodes: dict[str, _Node] = {}
    for node_id, node_data in raw_nodes.items():
        if not isinstance(node_data, Mapping):
            # Reported by the schema check; keep the id so exits to it are not unknown.
            nodes[str(node_id)] = _Node(str(node_id), "", {}, broken_exit=True)
            continue
        node_type = node_data.get("type")
        node = _Node(str(node_id), str(node_type), node_data)
        if isinstance(node_type, str) and node_type in registry:
            node.waits = registry.get(node_type).waits
            type_schema = schema["$defs"]["node_types"][node_type]
            for ref in find_fields(schema, type_schema, node_data):
                if ref.kind == "node_ref" and isinstance(ref.value, str):
                    node.exits.append((ref.path, ref.value))
                    node.broken_exit |= not re.match(ID_PATTERN, ref.value)
                elif ref.kind == "node_ref":
                    node.broken_exit = True
                elif ref.kind == "expression" and isinstance(ref.value, str):
                    node.expressions.append((ref.path, ref.value))
            node.broken_exit |= any(
                name not in node_data
                and type_schema["properties"].get(name, {}).get("$ref") == "#/$defs/node_ref"
                for name in type_schema.get("required", ())
            )
        else:
            # Unknown type (reported by the schema check): guess its exits from
            # the usual field names so its targets do not look unreachable.
            node.exits = [
                (path, value)
                for path, value in iter_strings(node_data)
                if path and path[-1] in _USUAL_EXIT_FIELDS
            ]
        nodes[node.id] = node
    return nodes


def _check_targets(checker: _Checker, data: Mapping[str, Any], nodes: dict[str, _Node]) -> None:
    names = list(nodes)
    for field_name in ("start", "error_handler"):
        target = data.get(field_name)
        if isinstance(target, str) and target not in nodes:
            checker.report(
                (field_name,),
                f"no node named '{target}'.",
                _target_hint(target, names),
                code="unknown-target",
            )
    for node in nodes.values():
        for path, target in node.exits:
            if target not in nodes and re.match(ID_PATTERN, target):
                checker.report(
                    ("nodes", node.id, *path),
                    f"no node named '{target}'.",
                    _target_hint(target, names),
                    code="unknown-target",
                )


def _target_hint(target: str, names: list[str]) -> str:
    suggestion = did_you_mean(target, names)
    if suggestion:
        return as_sentence(suggestion)
    return (
        f"Use the id of one of the nodes under 'nodes:' ({quoted_list(names)}), "
        f"or add a node named '{target}'."
    )


def _successors(node: _Node, nodes: Mapping[str, _Node]) -> list[str]:
    return [target for _, target in node.exits if target in nodes]


def _reachable(roots: list[str], nodes: Mapping[str, _Node]) -> list[str]:
    order: list[str] = []
    seen = set()
    queue = deque(root for root in roots if root in nodes)
    while queue:
        current = queue.popleft()
        if current in seen:
            continue
        seen.add(current)
        order.append(current)
        queue.extend(_successors(nodes[current], nodes))
    return order


def _roots(data: Mapping[str, Any]) -> list[str]:
    return [r for r in (data.get("start"), data.get("error_handler")) if isinstance(r, str)]


def _check_reachability(checker: _Checker, data: Mapping[str, Any], nodes: dict[str, _Node]) -> None:
    if not isinstance(data.get("start"), str) or data["start"] not in nodes:
        return  # already reported; everything would look unreachable
    if any(n.broken_exit or any(t not in nodes for _, t in n.exits) for n in nodes.values()):
        # A missing or misspelled exit is reported already, and it probably is
        # the way to the nodes that now look unreachable: one mistake, one error.
        return
    reached = set(_reachable(_roots(data), nodes))
    for node in nodes.values():
        if node.id not in reached:
            checker.report(
                ("nodes", node.id),
                f"no call can reach node '{node.id}': no other node goes to it.",
                "Point an exit (next, an option's next, on_error, ...) at it, or delete it.",
                code="unreachable",
                on_key=True,
            )


def _check_ending(checker: _Checker, data: Mapping[str, Any], nodes: dict[str, _Node]) -> set[str]:
    """Find places from which the call can never end (every path loops back).

    Returns the nodes from which the call cannot end.
    """
    predecessors: dict[str, list[str]] = {name: [] for name in nodes}
    for node in nodes.values():
        for target in _successors(node, nodes):
            predecessors[target].append(node.id)
    # A node whose exits all point nowhere ends the call (hangup, transfer,
    # end) or fails validation elsewhere; walk backwards from those.
    can_end = set()
    queue = deque(n.id for n in nodes.values() if not n.exits or any(t not in nodes for _, t in n.exits))
    while queue:
        current = queue.popleft()
        if current in can_end:
            continue
        can_end.add(current)
        queue.extend(predecessors[current])
    reached = _reachable(_roots(data), nodes)
    stuck = [name for name in reached if name not in can_end]
    for name in stuck:
        entered_from_outside = name in _roots(data) or any(p in can_end for p in predecessors[name])
        if entered_from_outside:
            checker.report(
                ("nodes", name),
                f"once a call reaches '{name}' it can never end: every path from there comes back around.",
                "Give one node of this loop an exit to a node that ends the call"
                + _ending_types(checker.registry)
                + ".",
                code="never-ends",
                on_key=True,
            )
    return set(stuck)


# The engine's jobs (ENGINE_ROLE) that end a call: the node types to suggest to end a loop.
_ENDING_ROLES = ("farewell", "transfer", "end")


def _ending_types(registry: PluginRegistry) -> str:
    """The installed types whose ENGINE_ROLE ends the call, quoted in brackets (or nothing)."""
    by_role = {t.engine_role: t.name for t in registry if t.engine_role in _ENDING_ROLES}
    names = [by_role[role] for role in _ENDING_ROLES if role in by_role]
    return f" ({quoted_list(names)})" if names else ""


def _strongly_connected(nodes: dict[str, _Node]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; returns components in discovery order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(_successors(nodes[root], nodes)))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            current, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(_successors(nodes[child], nodes))))
                    advanced = True
                    break
                if child in on_stack:
                    low[current] = min(low[current], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[current])
            if low[current] == index[current]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == current:
                        break
                components.append(list(reversed(component)))
    return components


def _check_loops(checker: _Checker, nodes: dict[str, _Node], stuck: set[str]) -> None:
    for component in _strongly_connected(nodes):
        first = component[0]
        is_loop = len(component) > 1 or first in _successors(nodes[first], nodes)
        if not is_loop or stuck.intersection(component):
            continue  # a loop the call can never leave is reported as such already
        members = [nodes[name] for name in component]
        # A node that waits (WAITS: a listen, a signal, a subflow running a flow that
        # usually waits for the caller) paces the loop by people.
        if any(m.waits or "max_visits" in m.data for m in members):
            continue
        ordered = sorted(component, key=lambda n: checker.document.source_map.locate(("nodes", n))[0])
        cycle = " → ".join(ordered + [ordered[0]])
        checker.report(
            ("nodes", ordered[0]),
            f"the nodes {cycle} form a loop that never waits for the caller; "
            "only the visit limit (100) would stop it.",
            "Add 'max_visits: N' to one of these nodes to say how often the loop may run.",
            code="unbounded-loop",
            warning=True,
            on_key=True,
        )


def _check_handlers(checker: _Checker, nodes: dict[str, _Node]) -> None:
    schema = flow_schema(checker.registry)
    for node in nodes.values():
        if node.type not in checker.registry:
            continue
        accepted = schema["$defs"]["node_types"][node.type]["properties"]
        wanted = [name for name in ("no_input", "no_match") if name in accepted]
        # A node that matches the caller against expected_phrases has nothing to miss without them.
        if "expected_phrases" in accepted and not node.data.get("expected_phrases"):
            wanted = [name for name in wanted if name != "no_match"]
        for name in wanted:
            handlers = node.data.get(name)
            if name not in node.data:
                words = "says nothing" if name == "no_input" else "answers something unexpected"
                checker.report(
                    ("nodes", node.id),
                    f"node '{node.id}' has no '{name}': nothing is planned for a caller who {words}.",
                    f"Add '{name}:' with a reprompt and a 'next' for the last attempt.",
                    code=f"missing-{name.replace('_', '-')}",
                    warning=True,
                    on_key=True,
                )
            elif isinstance(handlers, list) and handlers and isinstance(handlers[-1], Mapping):
                leaving = next(
                    (i for i, h in enumerate(handlers) if isinstance(h, Mapping) and "next" in h), None
                )
                if leaving is not None and leaving < len(handlers) - 1:
                    unused = len(handlers) - 1 - leaving
                    checker.report(
                        ("nodes", node.id, name, leaving + 1),
                        f"'{name}' entry {leaving + 1} already leaves (next: "
                        f"{handlers[leaving]['next']}), so the {unused} "
                        f"entr{'y' if unused == 1 else 'ies'} after it "
                        f"{'is' if unused == 1 else 'are'} never used.",
                        "Move the entry with 'next' to the end of the list, or delete the entries after it.",
                        code="handler-never-used",
                        warning=True,
                    )
                elif "next" not in handlers[-1]:
                    checker.report(
                        ("nodes", node.id, name, len(handlers) - 1),
                        f"the last '{name}' handler has no 'next', so it repeats for ever.",
                        "Finish the list with an entry such as '- next: goodbye'.",
                        code="handler-without-next",
                        warning=True,
                    )


def _check_menu_keys(checker: _Checker, nodes: dict[str, _Node]) -> None:
    for node in nodes.values():
        options = node.data.get("options")
        if not isinstance(options, list):
            continue
        keys: dict[str, int] = {}
        phrases: dict[str, int] = {}
        for index, option in enumerate(options):
            if not isinstance(option, Mapping):
                continue
            key = option.get("key")
            if isinstance(key, str):
                if key in keys:
                    checker.report(
                        ("nodes", node.id, "options", index, "key"),
                        f"key '{key}' is already used by option {keys[key] + 1} of this menu.",
                        "Give each option its own key.",
                        code="duplicate-key-press",
                    )
                else:
                    keys[key] = index
            phrases_given = option.get("phrases")
            for p_index, phrase in enumerate(phrases_given if isinstance(phrases_given, list) else []):
                if not isinstance(phrase, str):
                    continue
                normal = " ".join(phrase.lower().split())
                if normal in phrases and phrases[normal] != index:
                    checker.report(
                        ("nodes", node.id, "options", index, "phrases", p_index),
                        f"the phrase '{phrase}' is already used by option {phrases[normal] + 1}.",
                        "A phrase can lead to one option only.",
                        code="duplicate-phrase",
                    )
                phrases.setdefault(normal, index)


def _check_templates(checker: _Checker, data: Mapping[str, Any], nodes: dict[str, _Node]) -> None:
    """Templates must parse; variables they read must be set on some path before them."""
    known_globals = set(environment().globals)
    uses: dict[str, list[tuple[DocPath, str, str | None]]] = {}
    for node in nodes.values():
        expression_paths = {path for path, _ in node.expressions}
        found: list[tuple[DocPath, str, str | None]] = []
        for path, expression in node.expressions:
            try:
                info = template_info(expression, condition=True)
            except TemplateProblem as problem:
                checker.report(
                    ("nodes", node.id, *path), *explain_condition(expression, problem), code="bad-expression"
                )
                continue
            found += _uses(path, info)
        for path, text in iter_strings(node.data):
            if path in expression_paths or "${" not in text:
                continue
            try:
                info = template_info(text, condition=False)
            except TemplateProblem as problem:
                checker.report(
                    ("nodes", node.id, *path),
                    *explain_template(text, problem),
                    code="bad-template",
                    at_text=(text, problem_offset(text)),
                )
                continue
            if not info.variables - known_globals:
                _check_fixed_template(checker, ("nodes", node.id, *path), text)
            found += _uses(path, info)
        uses[node.id] = [(p, n, f) for p, n, f in found if n not in known_globals]
    _check_variables_set(checker, data, nodes, uses)


def _uses(path: DocPath, info: TemplateInfo) -> list[tuple[DocPath, str, str | None]]:
    """(path, variable, field or None) for each variable a template reads, sorted."""
    with_field = {name for name, _ in info.fields}
    found: list[tuple[DocPath, str, str | None]] = [
        (path, name, None) for name in sorted(info.variables - with_field)
    ]
    found += [(path, name, field) for name, field in sorted(info.fields)]
    return found


def _check_fixed_template(checker: _Checker, path: DocPath, text: str) -> None:
    """A template that reads no variable comes out the same on every call: fill it in now.

    Safe to do here: the template engine bounds every operation that could make
    a large value before making it (engine.language.templates), so a text that would be
    100 MB is refused, not built.
    """
    try:
        render(text, {})
    except TemplateProblem as problem:
        checker.report(
            path,
            f"this text cannot be filled in: {problem}",
            f"Shorten what the ${{...}} makes; voxflow refuses texts longer than {MAX_OUTPUT:,} characters."
            if "limit" in str(problem)
            else "Fix the ${...} expression.",
            code="template-fails",
        )


def _sets(node: _Node) -> set[str]:
    names = {node.data[f] for f in _SAVE_FIELDS if isinstance(node.data.get(f), str)}
    for field_name in ("values", "outputs"):
        values = node.data.get(field_name)
        if isinstance(values, Mapping) and (
            field_name == "values" or called_flow(node.type, node.data) is not None
        ):
            names.update(str(k) for k in values)
    return names


# A variable saved by a node of one of these types holds exactly its OUTPUTS; an output named
# like "<column>" means "any field" (a query's columns, a signal's data).
def _output_fields(node: _Node, registry: PluginRegistry) -> frozenset[str] | None:
    if node.type not in registry:
        return None
    outputs = registry.get(node.type).outputs
    if not outputs or any(name.startswith("<") for name in outputs):
        return None
    return frozenset(outputs)


def _field_sources(
    data: Mapping[str, Any], nodes: dict[str, _Node], registry: PluginRegistry
) -> dict[str, tuple[frozenset[str] | None, list[str]]]:
    """variable → (the fields it can have, or None for any; the nodes that save it)."""
    sources: dict[str, tuple[frozenset[str] | None, list[str]]] = {}
    unconstrained = set(AUTOMATIC_VARIABLES) - {"last_error"}
    if isinstance(data.get("variables"), Mapping):
        unconstrained.update(str(name) for name in data["variables"])
    for node in nodes.values():
        saved = node.data.get("save_as")
        for name in _sets(node):
            fields = _output_fields(node, registry) if name == saved else None
            known, savers = sources.get(name, (frozenset(), []))
            if fields is None or known is None:
                sources[name] = (None, savers + [node.id])
            else:
                sources[name] = (known | fields, savers + [node.id])
    sources["last_error"] = (frozenset({"node", "message"}), [])
    for name in unconstrained:
        sources[name] = (None, [])
    return sources


def _check_variables_set(
    checker: _Checker,
    data: Mapping[str, Any],
    nodes: dict[str, _Node],
    uses: Mapping[str, list[tuple[DocPath, str, str | None]]],
) -> None:
    declared = set(AUTOMATIC_VARIABLES)
    if isinstance(data.get("variables"), Mapping):
        declared.update(str(name) for name in data["variables"])
    everything_set = declared.union(*(_sets(n) for n in nodes.values()))
    # "May" analysis: a name is available at a node if some path from the
    # start sets it. An error only when no path does, so there are no false alarms;
    # what is missing on one particular path is handled when the call runs
    # (empty text or the template's default(...), and a warning for the author).
    available: dict[str, set[str]] = {name: set() for name in nodes}
    start = data.get("start")
    if isinstance(start, str) and start in nodes:
        available[start] = set(declared)
    handler = data.get("error_handler")
    if isinstance(handler, str) and handler in nodes:
        # Any node may fail into the error handler, after whatever it set.
        available[handler] = set(everything_set)
    queue = deque(r for r in _roots(data) if r in nodes)
    while queue:
        current = queue.popleft()
        out = available[current] | _sets(nodes[current])
        for target in _successors(nodes[current], nodes):
            if not out <= available[target]:
                available[target] |= out
                queue.append(target)
    sources = _field_sources(data, nodes, checker.registry)
    for node_id, node_uses in uses.items():
        reported: set[str] = set()
        here = available[node_id] | _sets(nodes[node_id]) | declared
        for path, name, field_name in node_uses:
            where = ("nodes", node_id, *path)
            if name not in here:
                if name not in reported:
                    reported.add(name)
                    _report_unset(checker, where, name, everything_set)
                continue
            if field_name is None or (name, field_name) in reported:
                continue
            fields, savers = sources.get(name, (None, []))
            if fields is None or field_name in fields:
                continue
            reported.add((name, field_name))  # type: ignore[arg-type]
            saver = nodes[savers[0]] if savers else None
            by = (
                f"node '{saver.id}' ({saver.type}) saves"
                if saver and len(savers) == 1
                else "the nodes that set it save"
            )
            suggestion = did_you_mean(field_name, sorted(fields))
            checker.report(
                where,
                f"'{name}.{field_name}' does not exist: {by} {quoted_list(sorted(fields))} "
                f"under '{name}', not '{field_name}'.",
                (as_sentence(suggestion) + " " if suggestion else "")
                + f"Write ${{{name}.<field>}} with one of the fields above.",
                code="unknown-output",
            )


def _report_unset(checker: _Checker, where: DocPath, name: str, everything_set: set[str]) -> None:
    suggestion = did_you_mean(name, everything_set)
    if name in everything_set:
        message = f"'{name}' is used here, but no path to this node sets it first."
        hint = "Make sure a node that sets it (its save_as or a set node) runs before."
    else:
        message = f"'{name}' is used here, but nothing in this flow sets it."
        hint = (as_sentence(suggestion) + " ") if suggestion else ""
        hint += "Declare it under 'variables:' or save a node's result with save_as."
    checker.report(where, message, hint, code="unset-variable")


def variables_of(data: Any) -> set[str]:
    """Every variable a flow declares or sets anywhere (for a subflow's ``outputs``)."""
    if not isinstance(data, Mapping):
        return set()
    names = set(AUTOMATIC_VARIABLES)
    if isinstance(data.get("variables"), Mapping):
        names.update(str(name) for name in data["variables"])
    raw_nodes = data.get("nodes")
    if isinstance(raw_nodes, Mapping):
        for node_id, node_data in raw_nodes.items():
            if isinstance(node_data, Mapping):
                names |= _sets(_Node(str(node_id), str(node_data.get("type")), node_data))
    return names
