"""Chooses where to go: the first branch whose ``if`` is true wins, otherwise ``else``.

Conditions are written without ``${ }``: ``account.balance > 100``,
``menu.key == "1"``, ``caller_name != "there"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.plugin_api import EXPRESSION, NODE_REF, NodeContext, NodeResult, Services, evaluate

NODE_TYPE = "condition"
DOC = __doc__ or ""
RUNS_IN = "workflow"
DIAGRAM_SHAPE = "decision"
OUTPUTS: dict[str, str] = {}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["branches", "else"],
    "properties": {
        "branches": {
            "type": "array",
            "minItems": 1,
            "description": "Tried in order; the first whose 'if' is true is taken.",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["if", "next"],
                "properties": {
                    "if": {**EXPRESSION, "description": "A condition, e.g. balance > 100."},
                    "next": {**NODE_REF, "description": "Where to go when it is true."},
                },
            },
        },
        "else": {**NODE_REF, "description": "Where to go when no branch is true."},
    },
}


async def execute(config: Mapping[str, Any], context: NodeContext, services: Services) -> NodeResult:
    for index, branch in enumerate(config["branches"]):
        if evaluate(branch["if"], context.variables):
            return NodeResult(exit=f"branches[{index}].next")
    return NodeResult(exit="else")
