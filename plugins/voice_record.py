"""Records the caller (a voicemail, a statement) and transcribes the recording."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.plugin_api import (
    DURATION,
    EVENT_HANDLERS,
    NODE_REF,
    TEMPLATE,
    VARIABLE_NAME,
    VOICE_SETTINGS,
    Accepted,
    CallEnded,
    NodeContext,
    NodeResult,
    NoInput,
    Services,
    Verdict,
    converse,
    ended_by,
    open_channel,
    prompt,
    voice_settings,
)

NODE_TYPE = "voice_record"
DOC = __doc__ or ""
WAITS = True  # it waits for the caller or the outside world
RUNS_IN = "activity"
TALKS_TO_CALLER = True  # speaks or listens on the call's voice channel
HEARS_HANGUP = True  # the voice bus says call:caller_left (engine.voice.channel_base)
SPOKEN_FIELDS = ("prompt",)  # said to the caller: quoted in diagrams, synthesised ahead
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


DEFAULT_MAX_DURATION = 120.0


async def execute(config: Mapping[str, Any], context: NodeContext, services: Services) -> NodeResult:
    settings = voice_settings(config, context)

    async with open_channel(services, context, settings, NODE_TYPE) as channel:

        async def ask(text: str) -> Verdict:
            recorded = await channel.record(
                prompt=prompt(text, settings, config),
                max_duration=float(config.get("max_duration") or DEFAULT_MAX_DURATION),
                beep=bool(config.get("beep", True)),
                finish_on_key=str(config.get("finish_on_key") or ""),
                no_input_timeout=settings.no_input_timeout,
            )
            outputs = {
                "recording_url": recorded.url,
                "transcript": recorded.transcript,
                "duration": recorded.duration,
            }
            return NoInput(outputs) if recorded.kind == "no_input" else Accepted("next", outputs)

        try:
            return await converse(channel, config, settings, str(config.get("prompt") or ""), ask)
        except CallEnded as ended:
            return ended_by(ended)
