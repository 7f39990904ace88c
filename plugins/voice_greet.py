"""Greets the caller: says a message at the start of the call, then goes on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.plugin_api import NODE_REF, TEMPLATE, VOICE_SETTINGS, NodeContext, NodeResult, Services
from plugins._pending import not_runnable_yet

NODE_TYPE = "voice_greet"
DOC = __doc__ or ""
RUNS_IN = "activity"
OUTPUTS: dict[str, str] = {}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["message", "next"],
    "properties": {
        "message": {**TEMPLATE, "description": "What to say, e.g. 'Hello ${caller_name}!'"},
        "interruptible": {
            "type": "boolean",
            "description": "Whether the caller may cut in (default: the flow's barge_in).",
        },
        **VOICE_SETTINGS,
        "next": {**NODE_REF, "description": "Where to go after the message."},
    },
}


async def execute(config: Mapping[str, Any], context: NodeContext, services: Services) -> NodeResult:
    raise not_runnable_yet(NODE_TYPE, "the voice bus")
