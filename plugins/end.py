"""Ends the call without saying anything more."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.plugin_api import NodeContext, NodeResult, Services

NODE_TYPE = "end"
DOC = __doc__ or ""
RUNS_IN = "workflow"
ENGINE_ROLE = "end"  # the workflow ends the flow here, with the status and reason given
OUTPUTS: dict[str, str] = {}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "status": {
            "enum": ["completed", "failed", "transferred"],
            "description": "How the call is recorded (default completed).",
        },
        "reason": {"type": "string", "description": "Why the call ended, for the call record."},
    },
}


async def execute(config: Mapping[str, Any], context: NodeContext, services: Services) -> NodeResult:
    return NodeResult(exit="")  # no exit: the call ends here
