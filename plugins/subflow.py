"""Runs another flow as part of this call, then comes back.

``inputs`` set the other flow's variables; ``outputs`` copy its variables
back into this call when it ends (``local_name: its_name``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.plugin_api import (
    NODE_REF,
    NodeContext,
    NodeResult,
    Services,
    render_value,
    workflow_services,
)

NODE_TYPE = "subflow"
DOC = __doc__ or ""
RUNS_IN = "workflow"
WAITS = True  # it waits for the called flow, which may wait for the caller
CALLS_FLOW = "flow"  # the field naming the flow it runs
DIAGRAM_SHAPE = "subflow"
OUTPUTS: dict[str, str] = {}
_NAME = "^[A-Za-z_][A-Za-z0-9_]*$"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["flow", "next"],
    "properties": {
        "flow": {
            "type": "string",
            "pattern": "^[A-Za-z][A-Za-z0-9_-]*$",
            "description": "The id of the flow to run (its 'flow:' line).",
        },
        "inputs": {
            "type": "object",
            "propertyNames": {"pattern": _NAME},
            "description": "Its variables → values (may use ${variables}).",
        },
        "outputs": {
            "type": "object",
            "propertyNames": {"pattern": _NAME},
            "additionalProperties": {"type": "string", "pattern": _NAME},
            "description": "This call's variable → the other flow's variable to copy back.",
        },
        "on_error": {**NODE_REF, "description": "Where to go if the other flow fails."},
        "next": {**NODE_REF, "description": "Where to go when the other flow ends."},
    },
}


class SubflowFailed(Exception):
    """The other flow ended in failure; the calling node takes its on_error."""


def describe(config: Mapping[str, Any]) -> str:
    """A few words for diagrams."""
    return f"runs flow {config.get('flow', '?')}"


async def execute(config: Mapping[str, Any], context: NodeContext, services: Services) -> NodeResult:
    # Runs inside the call's workflow: the other flow is a child workflow on
    # the graph compiled into this call, so it is pinned like the caller.
    runtime = workflow_services(services, ("run_subflow",), NODE_TYPE)
    inputs = render_value(dict(config.get("inputs") or {}), context.variables)
    outcome = await runtime.run_subflow(config["flow"], inputs)
    if outcome.status == "failed":
        raise SubflowFailed(outcome.reason)
    if outcome.status != "completed" or outcome.call_ended:
        # Transferred, hung up or timed out inside the other flow: the whole call ends so.
        return NodeResult(exit="", outputs={"status": outcome.status, "reason": outcome.reason})
    copied = {local: outcome.variables.get(theirs) for local, theirs in (config.get("outputs") or {}).items()}
    return NodeResult(exit="next", variables=copied)
