"""Records the caller (a voicemail, a statement) and transcribes the recording."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.plugin_api import (
    DURATION, EVENT_HANDLERS, NODE_REF, TEMPLATE, VARIABLE_NAME, VOICE_SETTINGS,
    NodeContext, NodeResult, Services,
)
from plugins._pending import not_runnable_yet

NODE_TYPE = "voice_record"
DOC = __doc__ or ""
WAITS = True  # it waits for the caller or the outside world
RUNS_IN = "activity"
OUTPUTS = {
    "recording_url": "Where the recording is stored.",
    "transcript": "The recording as text.",
    "duration": "Length of the recording in seconds.",
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["next"],
    "properties": {
        "prompt": {**TEMPLATE, "description": "What to say before recording."},
        "max_duration": {**DURATION, "description": "The longest recording."},
        "beep": {"type": "boolean", "description": "Play a beep when recording starts."},
        "finish_on_key": {
            "type": "string",
            "pattern": "^[0-9#*]?$",
            "description": "A key that ends the recording, in quotes.",
        },
        **VOICE_SETTINGS,
        "save_as": {**VARIABLE_NAME, "description": "Save the recording's details under this name."},
        "no_input": {**EVENT_HANDLERS, "description": "What to do when the caller says nothing."},
        "next": {**NODE_REF, "description": "Where to go after recording."},
    },
}


async def execute(config: Mapping[str, Any], context: NodeContext, services: Services) -> NodeResult:
    raise not_runnable_yet(NODE_TYPE, "the voice bus")
