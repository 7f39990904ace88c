"""Asks a question and listens to what the caller says.

The transcript and the recogniser's confidence (0 to 1) are saved under
``save_as``. Give ``expected_phrases`` when you know what callers will say:
recognition is far more accurate with them, and an answer that matches none
of them counts as no match.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.plugin_api import (
    DURATION, EVENT_HANDLERS, NODE_REF, PHRASES, TEMPLATE, VARIABLE_NAME, VOICE_SETTINGS,
    NodeContext, NodeResult, Services,
)
from plugins._pending import not_runnable_yet

NODE_TYPE = "voice_listen"
DOC = __doc__ or ""
WAITS = True  # it waits for the caller or the outside world
RUNS_IN = "activity"
OUTPUTS = {
    "transcript": "What the caller said, as text.",
    "confidence": "How sure the recogniser is, from 0 to 1.",
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["next"],
    "properties": {
        "prompt": {**TEMPLATE, "description": "What to ask before listening."},
        "max_duration": {**DURATION, "description": "The longest answer to listen to."},
        "end_silence_ms": {
            "type": "integer",
            "minimum": 100,
            "maximum": 10000,
            "description": "Silence (in milliseconds) that ends the caller's answer.",
        },
        "expected_phrases": {**PHRASES, "description": "What callers are likely to say."},
        "interruptible": {"type": "boolean", "description": "Whether the caller may cut in."},
        **VOICE_SETTINGS,
        "save_as": {**VARIABLE_NAME, "description": "Save transcript and confidence under this name."},
        "no_input": {**EVENT_HANDLERS, "description": "What to do when the caller says nothing."},
        "no_match": {
            **EVENT_HANDLERS,
            "description": "What to do when the answer is unclear or matches no expected phrase.",
        },
        "next": {**NODE_REF, "description": "Where to go with the answer."},
    },
}


async def execute(config: Mapping[str, Any], context: NodeContext, services: Services) -> NodeResult:
    raise not_runnable_yet(NODE_TYPE, "the voice bus")
