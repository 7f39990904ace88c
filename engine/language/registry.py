"""Finding node plugins through the ``voxflow.nodes`` entry point group.

Like pluggy, we never scan module names: a node type exists because some
installed distribution declares it. A plugin that is malformed fails here, at
load, with a message that names it and says what is wrong.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any

import jsonschema

from engine.core.errors import VoxflowError
from engine.core.suggest import did_you_mean

ENTRY_POINT_GROUP = "voxflow.nodes"
NODE_TYPE_PATTERN = r"^[a-z][a-z0-9_]*$"
_RUNS_IN = ("activity", "workflow")
# Fields the engine adds to every node type; a plugin may not redefine them.
RESERVED_FIELDS = ("type", "description", "max_visits")
# The distribution whose node types are voxflow's own: their schemas are checked against the
# JSON Schema meta-schema by the test suite (tests/test_plugin_guide.py), not on every start,
# where it cost ~90 ms of each `voxflow validate`. Other packages' schemas are checked at load.
OWN_DISTRIBUTION = "voxflow"
# The jobs the engine itself gives some of its own nodes (engine.plugin_api, ENGINE_ROLE).
ENGINE_ROLES = ("end", "say", "farewell", "transfer")
# Shapes a node may ask for in diagrams (a voice node is drawn as one without asking).
DIAGRAM_SHAPES = ("decision", "subflow", "wait")
# The fields every fixed answer may have, whatever the node type (engine.simulate.fixtures).
GENERIC_ANSWER_FIELDS = ("outputs", "exit", "error")


@dataclass(frozen=True)
class NodeType:
    """One loaded, checked node plugin."""

    name: str
    doc: str
    schema: Mapping[str, Any]
    runs_in: str
    outputs: Mapping[str, str]
    module: ModuleType
    distribution: str
    waits: bool = False
    hears_hangup: bool = False
    talks_to_caller: bool = False
    engine_role: str | None = None
    calls_flow: str | None = None
    waits_for_signal: str | None = None
    diagram_shape: str | None = None
    describe: Callable[[Mapping[str, Any]], str] | None = None
    spoken_fields: tuple[str, ...] = ()
    answer_fields: Mapping[str, str] = field(default_factory=dict)
    simulated_outputs: Callable[[Mapping[str, Any], Mapping[str, Any]], Mapping[str, Any]] | None = None

    @property
    def calls_outside(self) -> bool:
        """An activity that does not talk to the caller calls an outside service."""
        return self.runs_in == "activity" and not self.talks_to_caller

    @property
    def summary(self) -> str:
        return self.doc.strip().splitlines()[0] if self.doc.strip() else ""


class PluginRegistry:
    """The node types available to this process, by name."""

    def __init__(self, node_types: Iterable[NodeType]) -> None:
        self._types: dict[str, NodeType] = {}
        for node_type in node_types:
            existing = self._types.get(node_type.name)
            if existing is not None:
                raise VoxflowError(
                    f"two installed packages both define the node type '{node_type.name}': "
                    f"{existing.distribution} and {node_type.distribution}. Uninstall one of them."
                )
            self._types[node_type.name] = node_type

    def names(self) -> list[str]:
        return sorted(self._types)

    def get(self, name: str) -> NodeType:
        try:
            return self._types[name]
        except KeyError:
            hint = did_you_mean(name, self._types)
            raise VoxflowError(f"unknown node type '{name}'{'; ' + hint if hint else ''}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def __iter__(self) -> Any:
        return iter(self._types[name] for name in self.names())


@functools.cache
def default_registry() -> PluginRegistry:
    """The registry of installed plugins, loaded once per process."""
    return load_registry(metadata.entry_points(group=ENTRY_POINT_GROUP))


def load_registry(entry_points: Iterable[metadata.EntryPoint]) -> PluginRegistry:
    return PluginRegistry(load_plugin(entry_point) for entry_point in entry_points)


def load_plugin(entry_point: metadata.EntryPoint) -> NodeType:
    distribution = entry_point.dist.name if entry_point.dist is not None else "unknown package"
    label = f"node plugin '{entry_point.name}' ({entry_point.value}, from {distribution})"
    try:
        loaded = entry_point.load()
    except Exception as exc:  # a plugin's import can fail in any way; name it
        raise VoxflowError(f"the {label} could not be imported: {type(exc).__name__}: {exc}") from exc
    if not isinstance(loaded, ModuleType):
        raise VoxflowError(f"the {label} must point at a module, not at {type(loaded).__name__}")
    return check_plugin_module(loaded, entry_point.name, distribution, label)


def check_plugin_module(module: ModuleType, entry_name: str, distribution: str, label: str) -> NodeType:
    """Check a plugin module against the contract in engine.plugin_api."""

    def fault(problem: str) -> VoxflowError:
        return VoxflowError(f"the {label} is malformed: {problem}")

    name = getattr(module, "NODE_TYPE", None)
    if not isinstance(name, str) or not re.match(NODE_TYPE_PATTERN, name):
        raise fault("NODE_TYPE must be a lowercase name such as 'send_sms'")
    if name != entry_name:
        raise fault(f"its NODE_TYPE is '{name}' but its entry point is named '{entry_name}'")
    doc = getattr(module, "DOC", None)
    if not isinstance(doc, str) or not doc.strip():
        raise fault("DOC must be a text explaining the node to flow authors")
    runs_in = getattr(module, "RUNS_IN", "activity")
    if runs_in not in _RUNS_IN:
        raise fault(f"RUNS_IN must be 'activity' or 'workflow', not {runs_in!r}")
    own = distribution == OWN_DISTRIBUTION
    if runs_in == "workflow" and not own:
        raise fault(
            "RUNS_IN = 'workflow' is only for voxflow's own logic nodes (the workflow runs a "
            "fixed set of them, so that old calls replay). Remove RUNS_IN, or set it to "
            "'activity': the node then runs as a Temporal activity, with retries and timeouts."
        )
    engine_role = getattr(module, "ENGINE_ROLE", None)
    if engine_role is not None and (not own or engine_role not in ENGINE_ROLES):
        raise fault("ENGINE_ROLE is for voxflow's own nodes only; remove it")
    outputs = getattr(module, "OUTPUTS", {})
    if not isinstance(outputs, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in outputs.items()
    ):
        raise fault("OUTPUTS must map each output name to a description")
    waits = getattr(module, "WAITS", False)
    if not isinstance(waits, bool):
        raise fault("WAITS must be True or False")
    hears_hangup = getattr(module, "HEARS_HANGUP", False)
    if not isinstance(hears_hangup, bool):
        raise fault("HEARS_HANGUP must be True or False")
    talks_to_caller = getattr(module, "TALKS_TO_CALLER", False)
    if not isinstance(talks_to_caller, bool):
        raise fault("TALKS_TO_CALLER must be True or False")
    calls_flow = getattr(module, "CALLS_FLOW", None)
    waits_for_signal = getattr(module, "WAITS_FOR_SIGNAL", None)
    for attribute, value in (("CALLS_FLOW", calls_flow), ("WAITS_FOR_SIGNAL", waits_for_signal)):
        if value is not None and not isinstance(value, str):
            raise fault(f"{attribute} must name one of the node's fields")
    diagram_shape = getattr(module, "DIAGRAM_SHAPE", None)
    if diagram_shape is not None and diagram_shape not in DIAGRAM_SHAPES:
        raise fault(f"DIAGRAM_SHAPE must be one of {', '.join(DIAGRAM_SHAPES)}")
    describe = getattr(module, "describe", None)
    if describe is not None and not callable(describe):
        raise fault("describe must be a function: describe(config) -> a few words for diagrams")
    schema = _check_schema(getattr(module, "SCHEMA", None), fault, meta=not own)
    spoken_fields = _check_spoken_fields(getattr(module, "SPOKEN_FIELDS", ()), schema, fault)
    answer_fields, simulated_outputs = _check_answer(module, fault)
    execute = getattr(module, "execute", None)
    if execute is None or not (inspect.iscoroutinefunction(execute) or asyncio.iscoroutinefunction(execute)):
        raise fault("it needs 'async def execute(config, context, services)'")
    if len(inspect.signature(execute).parameters) != 3:
        raise fault("execute must take exactly (config, context, services)")
    return NodeType(
        name,
        doc,
        schema,
        runs_in,
        dict(outputs),
        module,
        distribution,
        waits,
        hears_hangup,
        talks_to_caller,
        engine_role,
        calls_flow,
        waits_for_signal,
        diagram_shape,
        describe,
        spoken_fields,
        answer_fields,
        simulated_outputs,
    )


def _check_spoken_fields(value: object, schema: Mapping[str, Any], fault: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise fault('SPOKEN_FIELDS must be a tuple of field names, e.g. ("prompt",)')
    properties = schema.get("properties", {})
    for name in value:
        if not isinstance(name, str) or name not in properties:
            raise fault(f"SPOKEN_FIELDS names {name!r}, which is not a field of its SCHEMA")
    return tuple(value)


def _check_answer(module: ModuleType, fault: Any) -> tuple[dict[str, str], Any]:
    """ANSWER_FIELDS and simulated_outputs: both or neither (engine.plugin_api)."""
    fields = getattr(module, "ANSWER_FIELDS", None)
    simulate = getattr(module, "simulated_outputs", None)
    if fields is None and simulate is None:
        return {}, None
    if fields is None or simulate is None:
        raise fault(
            "ANSWER_FIELDS and simulated_outputs(answer, config) go together: "
            "give both, or neither (a test then gives the node's outputs in full)"
        )
    if (
        not isinstance(fields, Mapping)
        or not fields
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items())
    ):
        raise fault("ANSWER_FIELDS must map each field of a fixed answer to a description")
    clashes = [name for name in GENERIC_ANSWER_FIELDS if name in fields]
    if clashes:
        raise fault(f"ANSWER_FIELDS may not define {', '.join(clashes)}: every answer has them")
    if not callable(simulate) or len(inspect.signature(simulate).parameters) != 2:
        raise fault("simulated_outputs must be a function: simulated_outputs(answer, config) -> outputs")
    return dict(fields), simulate


def _check_schema(schema: object, fault: Any, meta: bool = True) -> Mapping[str, Any]:
    """The plugin's SCHEMA, once it is an object schema that defines none of the engine's fields."""
    if not isinstance(schema, Mapping) or schema.get("type") != "object":
        raise fault('SCHEMA must be a JSON Schema with "type": "object"')
    properties = schema.get("properties", {})
    if not isinstance(properties, Mapping):
        raise fault("SCHEMA 'properties' must be a mapping of field name to schema")
    clashes = [field for field in RESERVED_FIELDS if field in properties]
    if clashes:
        raise fault(f"SCHEMA may not define {', '.join(clashes)}: the engine provides them")
    if not meta:
        return schema
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top)"
        raise fault(f"SCHEMA is not valid JSON Schema at {where}: {exc.message}") from None
    return schema


def talks_to_caller(node_type: str, registry: PluginRegistry | None = None) -> bool:
    """Whether an installed node type speaks or listens on the call (its TALKS_TO_CALLER)."""
    registry = registry or default_registry()
    return node_type in registry and registry.get(node_type).talks_to_caller


def calls_outside(node_type: str, registry: PluginRegistry | None = None) -> bool:
    """Whether an installed node type calls an outside service: an activity that does not
    talk to the caller (a web API, a model, a database: voxflow's or a third party's node)."""
    registry = registry or default_registry()
    return node_type in registry and registry.get(node_type).calls_outside


def installed(node_type: str, registry: PluginRegistry | None = None) -> NodeType | None:
    """The installed node type of that name, or None."""
    registry = registry or default_registry()
    return registry.get(node_type) if node_type in registry else None


def called_flow(
    node_type: str, config: Mapping[str, Any], registry: PluginRegistry | None = None
) -> str | None:
    """The flow a node runs (the field its CALLS_FLOW names), when it runs one."""
    found = installed(node_type, registry)
    value = config.get(found.calls_flow) if found is not None and found.calls_flow else None
    return value if isinstance(value, str) else None


def awaited_signal(
    node_type: str, config: Mapping[str, Any], registry: PluginRegistry | None = None
) -> str | None:
    """The signal a node waits for (the field its WAITS_FOR_SIGNAL names), when it waits for one."""
    found = installed(node_type, registry)
    value = config.get(found.waits_for_signal) if found is not None and found.waits_for_signal else None
    return value if isinstance(value, str) else None


def engine_role(node_type: str, registry: PluginRegistry | None = None) -> str | None:
    """The job the engine gives a node of voxflow's own (its ENGINE_ROLE), if any."""
    found = installed(node_type, registry)
    return found.engine_role if found is not None else None
