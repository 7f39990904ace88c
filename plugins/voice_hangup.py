"""Says goodbye (optionally) and hangs up; the call ends here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.plugin_api import (
    COMPLETED,
    TEMPLATE,
    VOICE_SETTINGS,
    CallEnded,
    NodeContext,
    NodeResult,
    Services,
    call_ended,
    ended_by,
    open_channel,
    voice_settings,
)

NODE_TYPE = "voice_hangup"
DOC = __doc__ or ""
RUNS_IN = "activity"
TALKS_TO_CALLER = True  # speaks or listens on the call's voice channel
ENGINE_ROLE = "farewell"  # the workflow says its apology and time-up farewell through it
HEARS_HANGUP = True  # the voice bus says call:caller_left (engine.voice.channel_base)
SPOKEN_FIELDS = ("farewell_message",)  # said to the caller: quoted in diagrams, synthesised ahead
OUTPUTS: dict[str, str] = {}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "farewell_message": {**TEMPLATE, "description": "Said before hanging up."},
        **VOICE_SETTINGS,
    },
}


async def execute(config: Mapping[str, Any], context: NodeContext, services: Services) -> NodeResult:
    settings = voice_settings(config, context)
    async with open_channel(services, context, settings, NODE_TYPE) as channel:
        try:
            farewell = config.get("farewell_message")
            if farewell:
                # Not interruptible: a goodbye cut short sounds like a dropped call.
                await channel.speak(
                    str(farewell), voice=settings.voice, language=settings.language, interruptible=False
                )
        except CallEnded as ended:
            return ended_by(ended)
        await channel.hangup("the flow hung up")
    return call_ended(COMPLETED, f"the call was hung up at '{context.node_id}'")
