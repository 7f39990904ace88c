"""Calls a web API (JSON in and out) and saves the answer.

The response is saved under ``save_as`` as ``status``, ``body`` (parsed JSON
when the answer is JSON, text otherwise) and ``headers``. A status of 400 or
more counts as a failure: the node retries as configured, then takes
``on_error``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.plugin_api import NODE_REF, TEMPLATE, VARIABLE_NAME, NodeContext, NodeResult, Services
from plugins._pending import not_runnable_yet

NODE_TYPE = "http_request"
DOC = __doc__ or ""
RUNS_IN = "activity"
OUTPUTS = {
    "status": "The HTTP status code, e.g. 200.",
    "body": "The answer: JSON data, or text.",
    "headers": "The response headers.",
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["url", "next"],
    "properties": {
        "method": {"enum": ["GET", "POST", "PUT", "PATCH", "DELETE"], "description": "Default GET."},
        "url": {**TEMPLATE, "description": "The address to call; may use ${variables}."},
        "headers": {
            "type": "object",
            "additionalProperties": TEMPLATE,
            "description": "Request headers, e.g. Authorization.",
        },
        "query": {
            "type": "object",
            "description": "Query-string parameters.",
            "additionalProperties": {"type": ["string", "number", "boolean"]},
        },
        "body": {"description": "A JSON body; text in it may use ${variables}."},
        "save_as": {**VARIABLE_NAME, "description": "Save the response under this name."},
        "next": {**NODE_REF, "description": "Where to go after a successful call."},
    },
}


async def execute(config: Mapping[str, Any], context: NodeContext, services: Services) -> NodeResult:
    raise not_runnable_yet(NODE_TYPE, "the Temporal runtime")
