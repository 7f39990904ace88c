"""Asks a large language model (any OpenAI-compatible chat endpoint) and saves its reply.

The endpoint, model and key come from configuration (``VOXFLOW_LLM_BASE_URL``,
``VOXFLOW_LLM_MODEL``, ``VOXFLOW_LLM_API_KEY`` or OpenAI's own variables), so
OpenAI, a local server or any compatible service works; ``model`` here
overrides the configured one for this node.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.plugin_api import NODE_REF, TEMPLATE, VARIABLE_NAME, NodeContext, NodeResult, Services
from plugins._pending import not_runnable_yet

NODE_TYPE = "llm"
DOC = __doc__ or ""
RUNS_IN = "activity"
OUTPUTS = {"text": "The model's reply."}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["prompt", "next"],
    "properties": {
        "prompt": {**TEMPLATE, "description": "What to ask the model; may use ${variables}."},
        "system": {**TEMPLATE, "description": "Instructions for the model's role and style."},
        "model": {"type": "string", "minLength": 1, "description": "The model to use."},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "max_tokens": {"type": "integer", "minimum": 1, "maximum": 100000},
        "save_as": {**VARIABLE_NAME, "description": "Save the reply under this name (.text)."},
        "next": {**NODE_REF, "description": "Where to go with the reply."},
    },
}


async def execute(config: Mapping[str, Any], context: NodeContext, services: Services) -> NodeResult:
    raise not_runnable_yet(NODE_TYPE, "the Temporal runtime")
