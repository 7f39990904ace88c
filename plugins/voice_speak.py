"""Says a message to the caller, then goes on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.plugin_api import (
    NODE_REF,
    TEMPLATE,
    VOICE_SETTINGS,
    CallEnded,
    NodeContext,
    NodeResult,
    Services,
    ended_by,
    open_channel,
    voice_settings,
)

NODE_TYPE = "voice_speak"
DOC = __doc__ or ""
RUNS_IN = "activity"
TALKS_TO_CALLER = True  # speaks or listens on the call's voice channel
ENGINE_ROLE = "say"  # the workflow says hold messages (a subflow's) through this node
HEARS_HANGUP = True  # the voice bus says call:caller_left (engine.voice.channel_base)
SPOKEN_FIELDS = ("message",)  # said to the caller: quoted in diagrams, synthesised ahead
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
    return await say_message(config, context, services, NODE_TYPE)


async def say_message(
    config: Mapping[str, Any], context: NodeContext, services: Services, node_type: str
) -> NodeResult:
    """Say ``config["message"]`` and take ``next`` (shared with voice_greet)."""
    # Words the caller says over an interruptible message are not lost: the
    # channel hands them to the next question (see engine.voice.state).
    settings = voice_settings(config, context)
    async with open_channel(services, context, settings, node_type) as channel:
        try:
            await channel.speak(
                str(config["message"]),
                voice=settings.voice,
                language=settings.language,
                interruptible=settings.interruptible(config),
            )
        except CallEnded as ended:
            return ended_by(ended)
    return NodeResult(exit="next")
