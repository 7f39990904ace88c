"""Says goodbye (optionally) and hangs up; the call ends here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.plugin_api import TEMPLATE, VOICE_SETTINGS, NodeContext, NodeResult, Services
from engine.voice.errors import COMPLETED, CallEnded
from engine.voice.nodes import call_ended, ended_by, open_channel
from engine.voice.settings import voice_settings

NODE_TYPE = "voice_hangup"
DOC = __doc__ or ""
RUNS_IN = "activity"
HEARS_HANGUP = True  # the voice bus says call:caller_left (engine.voice.channel_base)
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
                await channel.speak(str(farewell), voice=settings.voice,
                                    language=settings.language, interruptible=False)
        except CallEnded as ended:
            return ended_by(ended)
        await channel.hangup("the flow hung up")
    return call_ended(COMPLETED, f"the call was hung up at '{context.node_id}'")
