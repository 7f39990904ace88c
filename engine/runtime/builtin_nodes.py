"""The node types the workflow runs itself, and the jobs it gives some of voxflow's own nodes.

Read once per process from voxflow's own ``voxflow.nodes`` entry points, never from
another package's (``RUNS_IN = "workflow"`` and ``ENGINE_ROLE`` are refused for them at
load), so a call replays the same whatever else is installed. The runtime names no
node type: each plugin says what it is (engine.plugin_api).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from engine.core.errors import VoxflowError
from engine.language.node_contract import NodeContext, NodeResult
from engine.language.registry import ENGINE_ROLES, ENTRY_POINT_GROUP, OWN_DISTRIBUTION, NodeType, load_plugin

LogicExecute = Callable[[Mapping[str, Any], NodeContext, Any], Awaitable[NodeResult]]


@dataclass(frozen=True)
class BuiltinNodes:
    """``logic``: node type → execute, for the nodes that run inside the workflow;
    ``instant``: those of them that never wait on Temporal (no history events);
    ``roles``: ENGINE_ROLE → node type (``end``, ``say``, ``farewell``, ``transfer``)."""

    logic: Mapping[str, LogicExecute]
    instant: frozenset[str]
    roles: Mapping[str, str]


def builtin_nodes(node_types: list[NodeType] | None = None) -> BuiltinNodes:
    if node_types is None:
        node_types = _own_node_types()
    logic = {t.name: t.module.execute for t in node_types if t.runs_in == "workflow"}
    instant = frozenset(t.name for t in node_types if t.runs_in == "workflow" and not t.waits)
    roles = {t.engine_role: t.name for t in node_types if t.engine_role is not None}
    missing = [role for role in ENGINE_ROLES if role not in roles]
    if missing:
        raise VoxflowError(
            f"voxflow's own node types give no node the role(s) {', '.join(missing)}: "
            "the installation is incomplete; reinstall voxflow."
        )
    return BuiltinNodes(logic, instant, roles)


def _own_node_types() -> list[NodeType]:
    distribution = metadata.distribution(OWN_DISTRIBUTION)
    return [
        load_plugin(entry_point)
        for entry_point in distribution.entry_points
        if entry_point.group == ENTRY_POINT_GROUP
    ]


BUILTIN = builtin_nodes()
