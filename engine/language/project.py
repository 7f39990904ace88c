"""A set of flow and trigger files checked and compiled together.

This is the entry point the commands use: ``check_paths`` runs load →
validate on every file (collecting every problem of every file), then the
checks that span files (duplicate flow ids, unknown or cyclic subflows,
triggers naming unknown flows, two triggers on one number), then compiles
the flows that are clean.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.core.errors import Diagnostic, Severity, VoxflowError
from engine.core.suggest import as_sentence, did_you_mean
from engine.language.compile import FlowGraph, compile_flow
from engine.language.graph_checks import graph_diagnostics, variables_of
from engine.language.load import LoadedDocument, load_file
from engine.language.registry import PluginRegistry, called_flow, default_registry
from engine.language.schema import flow_schema
from engine.language.sourcemap import format_path
from engine.language.triggers import Trigger, build_trigger, trigger_diagnostics
from engine.language.validate import schema_diagnostics

YAML_SUFFIXES = (".yaml", ".yml")
TEST_SUFFIXES = (".test.yaml", ".test.yml")


@dataclass
class ProjectCheck:
    """The outcome of checking some files: diagnostics, and what compiled."""

    files: list[str] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    flows: dict[str, FlowGraph] = field(default_factory=dict)
    flow_files: dict[str, str] = field(default_factory=dict)  # flow id → file
    triggers: list[Trigger] = field(default_factory=list)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.WARNING]


def is_trigger_file(path: Path) -> bool:
    return "triggers" in path.parts[:-1]


def is_test_file(path: Path) -> bool:
    return path.name.endswith(TEST_SUFFIXES) or "tests" in path.parts[:-1]


def find_files(paths: Iterable[str | Path]) -> list[Path]:
    """The flow and trigger files named by ``paths`` (folders are searched)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += sorted(
                p
                for p in path.rglob("*")
                if p.suffix in YAML_SUFFIXES and p.is_file() and not is_test_file(p.relative_to(path))
            )
        elif path.exists():
            found.append(path)
        else:
            raise VoxflowError(f"{raw}: no such file or folder.")
    return found


def check_paths(paths: Sequence[str | Path], registry: PluginRegistry | None = None) -> ProjectCheck:
    """Load, validate and compile every file under ``paths``; never raises for bad files."""
    registry = registry or default_registry()
    result = ProjectCheck()
    flow_docs: dict[str, LoadedDocument] = {}
    trigger_docs: list[LoadedDocument] = []
    for path in find_files(paths):
        result.files.append(str(path))
        try:
            document = load_file(path)
        except VoxflowError as error:
            result.diagnostics += error.diagnostics or [Diagnostic(str(path), 0, 0, "", error.message)]
            continue
        except (Exception, RecursionError) as error:  # a bug in the loader: this file only
            result.diagnostics.append(internal_problem(str(path), error))
            continue
        if is_trigger_file(path):
            trigger_docs.append(document)
            continue
        problems = check_flow_document(document, registry)
        result.diagnostics += problems
        flow_id = document.data.get("flow") if isinstance(document.data, Mapping) else None
        if isinstance(flow_id, str):
            if flow_id in result.flow_files:
                line, column = document.source_map.locate(("flow",))
                result.diagnostics.append(
                    Diagnostic(
                        document.file,
                        line,
                        column,
                        "flow",
                        f"the flow name '{flow_id}' is already used by {result.flow_files[flow_id]}.",
                        "Give each flow its own name.",
                        code="duplicate-flow",
                    )
                )
                continue
            result.flow_files[flow_id] = document.file
            if not any(d.is_error for d in problems):
                flow_docs[flow_id] = document
    known_flows = set(result.flow_files)
    result.diagnostics += _subflow_diagnostics(flow_docs, set(result.flow_files))
    _compile_all(flow_docs, registry, result)
    numbers: dict[str, str] = {}
    for document in trigger_docs:
        try:
            problems = trigger_diagnostics(document, known_flows)
            trigger = None if any(d.is_error for d in problems) else build_trigger(document)
        except (Exception, RecursionError) as error:
            problems, trigger = [internal_problem(document.file, error)], None
        result.diagnostics += problems
        if trigger is None:
            continue
        if trigger.number in numbers:
            line, column = document.source_map.locate(("number",))
            result.diagnostics.append(
                Diagnostic(
                    document.file,
                    line,
                    column,
                    "number",
                    f"the number {trigger.number} already has a trigger in {numbers[trigger.number]}.",
                    "A number can start one flow; remove one of the two triggers.",
                    code="duplicate-number",
                )
            )
            continue
        numbers[trigger.number] = document.file
        result.triggers.append(trigger)
    return result


def check_flow_document(document: LoadedDocument, registry: PluginRegistry) -> list[Diagnostic]:
    """Schema and graph diagnostics of one flow file; never raises.

    A check that fails on some input it did not foresee is a bug in voxflow,
    but it must not take the command (or a server's hot reload) down with it:
    the file gets one error saying so (code ``internal``), and the tests'
    fuzzing asserts that no input ever produces it.
    """
    try:
        diagnostics = schema_diagnostics(document, flow_schema(registry), kind="flow")
        diagnostics += graph_diagnostics(document, registry)
    except (Exception, RecursionError) as error:
        return [internal_problem(document.file, error)]
    diagnostics.sort(key=lambda d: (d.line, d.column, d.severity.value))
    return diagnostics


def internal_problem(file: str, error: BaseException) -> Diagnostic:
    """The one error of a file that a check could not finish (a bug in voxflow, not the file)."""
    return Diagnostic(
        file,
        1,
        1,
        "",
        f"voxflow could not finish checking this file ({type(error).__name__}: "
        f"{str(error)[:200]}); this is a bug in voxflow, not necessarily in the file.",
        "Please report it with the file attached; until then, the file is not served.",
        code="internal",
    )


def _subflow_calls(document: LoadedDocument) -> list[tuple[str, str]]:
    """(node id, flow id) for each node of a flow that runs another flow (CALLS_FLOW)."""
    nodes = document.data.get("nodes") or {}
    return [
        (node_id, flow)
        for node_id, node in nodes.items()
        if isinstance(node, Mapping)
        and isinstance(node.get("type"), str)
        and (flow := called_flow(node["type"], node)) is not None
    ]


def _subflow_diagnostics(docs: Mapping[str, LoadedDocument], known: set[str]) -> list[Diagnostic]:
    diagnostics = []
    for document in docs.values():
        for node_id, called in _subflow_calls(document):
            if called not in known:
                path = ("nodes", node_id, "flow")
                line, column = document.source_map.locate(path)
                hint = as_sentence(did_you_mean(called, known)) or (
                    "Use the 'flow:' name written at the top of another flow file, and "
                    "validate the folder that holds both."
                )
                diagnostics.append(
                    Diagnostic(
                        document.file,
                        line,
                        column,
                        format_path(path),
                        f"no flow named '{called}'.",
                        hint,
                        code="unknown-flow",
                    )
                )
        diagnostics += _subflow_output_diagnostics(document, docs)
    for cycle in _subflow_cycles(docs):
        first = docs[cycle[0]]
        node_id = next(n for n, called in _subflow_calls(first) if called == cycle[1 % len(cycle)])
        path = ("nodes", node_id, "flow")
        line, column = first.source_map.locate(path)
        diagnostics.append(
            Diagnostic(
                first.file,
                line,
                column,
                format_path(path),
                "these flows call each other in a circle: " + " → ".join([*cycle, cycle[0]]) + ".",
                "A subflow may not (even indirectly) call the flow that called it; use a "
                "loop inside one flow instead.",
                code="subflow-cycle",
            )
        )
    return diagnostics


def _subflow_output_diagnostics(
    document: LoadedDocument, docs: Mapping[str, LoadedDocument]
) -> list[Diagnostic]:
    """A subflow's ``outputs`` must copy variables the called flow actually has."""
    diagnostics = []
    nodes = document.data.get("nodes") or {}
    for node_id, called in _subflow_calls(document):
        outputs = nodes[node_id].get("outputs")
        if called not in docs or not isinstance(outputs, Mapping):
            continue
        theirs = variables_of(docs[called].data)
        for local, name in outputs.items():
            if not isinstance(name, str) or name in theirs:
                continue
            path = ("nodes", node_id, "outputs", local)
            line, column = document.source_map.locate(path)
            suggestion = did_you_mean(name, theirs)
            diagnostics.append(
                Diagnostic(
                    document.file,
                    line,
                    column,
                    format_path(path),
                    f"the flow '{called}' has no variable '{name}' to copy back.",
                    (as_sentence(suggestion) + " " if suggestion else "")
                    + f"Name a variable that '{called}' declares or sets.",
                    code="unknown-subflow-output",
                )
            )
    return diagnostics


def _subflow_cycles(docs: Mapping[str, LoadedDocument]) -> list[list[str]]:
    calls = {flow_id: [c for _, c in _subflow_calls(doc) if c in docs] for flow_id, doc in docs.items()}
    cycles: list[list[str]] = []
    seen_sets: set[frozenset[str]] = set()

    def visit(current: str, trail: list[str]) -> None:
        for called in calls.get(current, []):
            if called in trail:
                cycle = trail[trail.index(called) :]
                if frozenset(cycle) not in seen_sets:
                    seen_sets.add(frozenset(cycle))
                    cycles.append(cycle)
            elif len(trail) < 50:
                visit(called, [*trail, called])

    for flow_id in sorted(calls):
        visit(flow_id, [flow_id])
    return cycles


def _compile_all(docs: Mapping[str, LoadedDocument], registry: PluginRegistry, result: ProjectCheck) -> None:
    """Compile clean flows, callees before callers, so subflows are compiled in."""
    in_cycle = {flow for cycle in _subflow_cycles(docs) for flow in cycle}

    def compile_one(flow_id: str, trail: tuple[str, ...]) -> FlowGraph | None:
        if flow_id in result.flows:
            return result.flows[flow_id]
        if flow_id not in docs or flow_id in in_cycle or flow_id in trail:
            return None
        callees = {}
        for _, called in _subflow_calls(docs[flow_id]):
            graph = compile_one(called, (*trail, flow_id))
            if graph is None:
                return None
            callees[called] = graph
        try:
            result.flows[flow_id] = compile_flow(docs[flow_id], registry, callees)
        except VoxflowError as error:
            result.diagnostics += error.diagnostics or [
                Diagnostic(docs[flow_id].file, 1, 1, "", error.message)
            ]
            return None
        except (Exception, RecursionError) as error:
            result.diagnostics.append(internal_problem(docs[flow_id].file, error))
            return None
        return result.flows[flow_id]

    for flow_id in docs:
        compile_one(flow_id, ())


def compile_paths(paths: Sequence[str | Path], registry: PluginRegistry | None = None) -> ProjectCheck:
    """Like :func:`check_paths` but raises :class:`VoxflowError` when any file has errors."""
    result = check_paths(paths, registry)
    if result.errors:
        raise VoxflowError.from_diagnostics(result.diagnostics)
    return result


def compile_file(path: str | Path, registry: PluginRegistry | None = None) -> FlowGraph:
    """Compile one flow file; subflows it calls are looked up in the same folder."""
    target = Path(path)
    if not target.is_file():
        raise VoxflowError(f"{path}: no such file.")
    folder = target.parent
    result = check_paths([folder] if folder != Path("") else ["."], registry)
    own = [d for d in result.diagnostics if Path(d.file) == target or d.file == str(target)]
    if any(d.is_error for d in own):
        raise VoxflowError.from_diagnostics(own)
    for flow_id, file in result.flow_files.items():
        if Path(file) == target and flow_id in result.flows:
            return result.flows[flow_id]
    # The file is not a flow in its folder's view (e.g. a trigger): check it alone.
    single = check_paths([target], registry)
    if single.errors:
        raise VoxflowError.from_diagnostics(single.diagnostics)
    if not single.flows:
        raise VoxflowError(f"{path} is not a flow file (it has no 'flow:' and 'nodes:').")
    return next(iter(single.flows.values()))
