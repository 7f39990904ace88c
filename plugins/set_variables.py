"""Sets variables, e.g. ``attempts: "${attempts + 1}"`` or ``vip: true``.

Text values may use ``${...}``; a value that is exactly one placeholder keeps
its type (a number stays a number).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.plugin_api import NODE_REF, NodeContext, NodeResult, Services, render_value

NODE_TYPE = "set"
DOC = __doc__ or ""
RUNS_IN = "workflow"
OUTPUTS: dict[str, str] = {}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["values", "next"],
    "properties": {
        "values": {
            "type": "object",
            "minProperties": 1,
            "description": "Variable name → new value.",
            "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
        },
        "next": {**NODE_REF, "description": "Where to go next."},
    },
}


async def execute(config: Mapping[str, Any], context: NodeContext, services: Services) -> NodeResult:
    variables = dict(context.variables)
    assigned: dict[str, Any] = {}
    for name, value in config["values"].items():
        assigned[name] = render_value(value, variables)
        variables[name] = assigned[name]  # later values may use earlier ones
    return NodeResult(exit="next", variables=assigned)
