"""Collects digits the caller types on the keypad (an account number, a PIN)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.plugin_api import (
    DURATION, EVENT_HANDLERS, NODE_REF, TEMPLATE, VARIABLE_NAME, VOICE_SETTINGS,
    NodeContext, NodeResult, Services,
)
from plugins._pending import not_runnable_yet

NODE_TYPE = "voice_dtmf_collect"
DOC = __doc__ or ""
WAITS = True  # it waits for the caller or the outside world
RUNS_IN = "activity"
OUTPUTS = {"digits": "The digits typed, as text (leading zeros kept)."}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["next"],
    "properties": {
        "prompt": {**TEMPLATE, "description": "What to ask for."},
        "num_digits": {
            "type": "integer",
            "minimum": 1,
            "maximum": 32,
            "description": "Stop after this many digits.",
        },
        "finish_on_key": {
            "type": "string",
            "pattern": "^[#*]?$",
            "description": "A key that ends the input early (# or *), in quotes.",
        },
        "timeout": {**DURATION, "description": "How long to wait for each digit."},
        "interruptible": {"type": "boolean", "description": "Whether a key press cuts the prompt."},
        **VOICE_SETTINGS,
        "save_as": {**VARIABLE_NAME, "description": "Save the digits under this name."},
        "no_input": {**EVENT_HANDLERS, "description": "What to do when no key is pressed."},
        "no_match": {**EVENT_HANDLERS, "description": "What to do when too few digits come."},
        "next": {**NODE_REF, "description": "Where to go with the digits."},
    },
}


async def execute(config: Mapping[str, Any], context: NodeContext, services: Services) -> NodeResult:
    raise not_runnable_yet(NODE_TYPE, "the voice bus")
