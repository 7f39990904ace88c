"""Offers choices: the caller presses a key or says a phrase, and the call goes that way.

Spoken answers are matched ignoring case, punctuation and filler words
("um, my balance please" matches the phrase "my balance").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.plugin_api import (
    DURATION, EVENT_HANDLERS, NODE_REF, PHRASES, TEMPLATE, VARIABLE_NAME, VOICE_SETTINGS,
    NodeContext, NodeResult, Services,
)
from plugins._pending import not_runnable_yet

NODE_TYPE = "voice_menu"
DOC = __doc__ or ""
WAITS = True  # it waits for the caller or the outside world
RUNS_IN = "activity"
OUTPUTS = {
    "key": "The key of the option chosen.",
    "transcript": "What the caller said, if they spoke.",
    "confidence": "How sure the recogniser is, from 0 to 1.",
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["prompt", "options"],
    "properties": {
        "prompt": {**TEMPLATE, "description": "The choices, read to the caller."},
        "options": {
            "type": "array",
            "minItems": 1,
            "description": "The choices: a key to press and/or phrases to say, and where each goes.",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["next"],
                "anyOf": [{"required": ["key"]}, {"required": ["phrases"]}],
                "x-hint": "Give each option a 'key' to press, 'phrases' to say, or both.",
                "properties": {
                    "key": {
                        "type": "string",
                        "pattern": "^[0-9*#]$",
                        "description": "One phone key: 0-9, * or #, in quotes (\"1\").",
                        "x-hint": "Write one phone key in quotes, e.g. key: \"1\".",
                    },
                    "phrases": PHRASES,
                    "next": {**NODE_REF, "description": "Where this choice goes."},
                },
            },
        },
        "max_duration": {**DURATION, "description": "The longest spoken answer to listen to."},
        "interruptible": {"type": "boolean", "description": "Whether the caller may cut in."},
        **VOICE_SETTINGS,
        "save_as": {**VARIABLE_NAME, "description": "Save the choice under this name."},
        "no_input": {**EVENT_HANDLERS, "description": "What to do when the caller does nothing."},
        "no_match": {**EVENT_HANDLERS, "description": "What to do when no option matches."},
    },
}


async def execute(config: Mapping[str, Any], context: NodeContext, services: Services) -> NodeResult:
    raise not_runnable_yet(NODE_TYPE, "the voice bus")
