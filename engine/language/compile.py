"""Stage 3, ``compile``: a validated flow → an immutable, content-hashed FlowGraph.

The graph is what a call runs on. It is plain frozen dataclasses of JSON-able
values, so it travels as Temporal workflow input; its hash (over what the
call does, not over comments, key order or line numbers) is the flow's
version. Subflows are compiled in, so a call pins the versions of every flow
it may enter at the moment it starts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from engine.language.duration import parse_duration
from engine.language.fields import find_fields, spoken_texts
from engine.language.load import LoadedDocument
from engine.language.registry import PluginRegistry, called_flow
from engine.language.schema import DEFAULT_MAX_VISITS, flow_schema
from engine.language.sourcemap import DocPath, format_path

# Settings a node inherits from the flow unless it sets its own.
INHERITED_SETTINGS = ("voice", "language", "barge_in", "no_input_timeout", "end_silence_ms")
_HANDLER_LABELS = {"no_input": "no input", "no_match": "no match"}
_FIELD_LABELS = {"on_error": "error", "on_timeout": "timeout", "else": "else"}


@dataclass(frozen=True)
class Exit:
    """One way out of a node: the field that names it, where it goes, a label for diagrams."""

    name: str
    target: str
    label: str = ""


@dataclass(frozen=True)
class FlowNode:
    """One compiled node.

    ``config`` holds the node's fields as written (``type`` removed), with
    lengths of time turned into seconds and the flow's settings filled in
    where the node did not set them. ``line`` is where it starts in its file
    (not part of the version hash).
    """

    id: str
    type: str
    runs_in: str
    config: dict[str, Any]
    exits: tuple[Exit, ...]
    max_visits: int = DEFAULT_MAX_VISITS
    line: int = 0
    # The engine's per-node time limit (its ``timeout`` field), in seconds. None
    # when the node has none, or when the node type uses ``timeout`` for
    # something of its own (a digit collector's wait for each digit).
    time_limit: float | None = None
    # Whether the node speaks or listens on the call and whether it waits (its type's
    # TALKS_TO_CALLER and WAITS), and the texts it may say to the caller, as written: its
    # SPOKEN_FIELDS, then its handlers' reprompts (engine.language.fields.spoken_texts).
    # Read to prepare speech ahead of time (engine.language.upcoming); derived from the
    # node's type and config, so not part of the version.
    talks_to_caller: bool = False
    waits: bool = False
    says: tuple[str, ...] = ()

    def exit_target(self, name: str) -> str | None:
        for candidate in self.exits:
            if candidate.name == name:
                return candidate.target
        return None


@dataclass(frozen=True)
class FlowGraph:
    """A compiled flow. ``version`` is the content hash of everything else but ``source``."""

    flow_id: str
    description: str
    start: str
    nodes: dict[str, FlowNode]
    variables: dict[str, Any]
    settings: dict[str, Any]
    error_handler: str | None = None
    subflows: dict[str, FlowGraph] = field(default_factory=dict)
    version: str = ""
    source: str = ""

    @property
    def short_version(self) -> str:
        return self.version[:12]

    def node(self, node_id: str) -> FlowNode:
        return self.nodes[node_id]


def compile_flow(
    document: LoadedDocument,
    registry: PluginRegistry,
    subflows: Mapping[str, FlowGraph] | None = None,
) -> FlowGraph:
    """Compile a flow that has passed validation (see engine.language.validate).

    ``subflows`` are the already compiled flows it calls, by flow id.
    """
    data = document.data
    schema = flow_schema(registry)
    settings = _settings_in_seconds(data.get("settings") or {})
    nodes: dict[str, FlowNode] = {}
    for node_id, node_data in data["nodes"].items():
        node_type = registry.get(node_data["type"])
        type_schema = schema["$defs"]["node_types"][node_type.name]
        node = _compile_node(
            node_id,
            node_data,
            node_type.runs_in,
            type_schema,
            schema,
            settings,
            document.source_map.locate(("nodes", node_id), at_key=True)[0],
        )
        plugin_fields = node_type.schema.get("properties", {})
        if node.runs_in == "activity" and "timeout" not in plugin_fields:
            node = replace(node, time_limit=node.config.get("timeout"))
        said = spoken_texts(node_type.spoken_fields, node_type.schema, node_data)
        node = replace(
            node,
            talks_to_caller=node_type.talks_to_caller,
            waits=node_type.waits,
            says=tuple(dict.fromkeys(text for text in said if text.strip())),
        )
        nodes[node_id] = node
    called = {
        flow for node in nodes.values() if (flow := called_flow(node.type, node.config, registry)) is not None
    }
    graph = FlowGraph(
        flow_id=data["flow"],
        description=data.get("description", ""),
        start=data["start"],
        nodes=nodes,
        variables={name: (spec or {}).get("default") for name, spec in (data.get("variables") or {}).items()},
        settings=settings,
        error_handler=data.get("error_handler"),
        subflows={
            flow_id: (subflows or {})[flow_id] for flow_id in sorted(called) if flow_id in (subflows or {})
        },
        source=document.file,
    )
    return with_version(graph)


def _compile_node(
    node_id: str,
    node_data: Mapping[str, Any],
    runs_in: str,
    type_schema: Mapping[str, Any],
    root_schema: Mapping[str, Any],
    flow_settings: Mapping[str, Any],
    line: int,
) -> FlowNode:
    config = json.loads(json.dumps({k: v for k, v in node_data.items() if k != "type"}))
    exits: list[Exit] = []
    for ref in find_fields(root_schema, type_schema, node_data):
        if ref.kind == "node_ref" and isinstance(ref.value, str):
            exits.append(Exit(format_path(ref.path), ref.value, exit_label(node_data, ref.path)))
        elif ref.kind == "duration" and ref.value is not None:
            _set_at(config, ref.path, parse_duration(ref.value))
    accepted = type_schema.get("properties", {})
    for name in INHERITED_SETTINGS:
        if name in accepted and name not in config and name in flow_settings:
            config[name] = flow_settings[name]
    return FlowNode(
        id=node_id,
        type=node_data["type"],
        runs_in=runs_in,
        config=config,
        exits=tuple(exits),
        max_visits=int(node_data.get("max_visits", DEFAULT_MAX_VISITS)),
        line=line,
    )


def exit_label(node_data: Mapping[str, Any], path: DocPath) -> str:
    """A short label for an exit, for diagrams: '1 / balance', 'no input', 'error'."""
    head = path[0]
    if head == "options" and len(path) > 1 and isinstance(path[1], int):
        option = node_data["options"][path[1]]
        parts = [str(option["key"])] if "key" in option else []
        parts += [str(p) for p in option.get("phrases", [])[:2]]
        return " / ".join(parts)
    if head in _HANDLER_LABELS:
        return _HANDLER_LABELS[str(head)]
    if head == "branches" and len(path) > 1 and isinstance(path[1], int):
        return str(node_data["branches"][path[1]].get("if", ""))
    if head == "next" and len(path) == 1:
        return ""
    return _FIELD_LABELS.get(str(head), format_path(path))


def _settings_in_seconds(settings: Mapping[str, Any]) -> dict[str, Any]:
    result = dict(settings)
    for name in ("no_input_timeout", "max_call_duration", "silence_check_after", "silence_hangup_after"):
        if name in result:
            result[name] = parse_duration(result[name])
    return result


def _set_at(container: Any, path: DocPath, value: Any) -> None:
    for part in path[:-1]:
        container = container[part]
    container[path[-1]] = value


def graph_hash(graph: FlowGraph) -> str:
    """sha256 over the graph's behaviour: no source file, no line numbers."""
    content = asdict(graph)
    content.pop("version")
    content.pop("source")
    content["subflows"] = {name: sub.version for name, sub in graph.subflows.items()}
    for node in content["nodes"].values():
        node.pop("line")
        # Derived from the config (and the node type): what the prompt cache reads.
        for derived in ("talks_to_caller", "waits", "says"):
            node.pop(derived, None)
        # Exits are looked up by name; the order their fields were written in
        # the file must not make a new version.
        node["exits"] = sorted(node["exits"], key=lambda exit_: exit_["name"])
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def with_version(graph: FlowGraph) -> FlowGraph:
    return replace(graph, version=graph_hash(graph))
