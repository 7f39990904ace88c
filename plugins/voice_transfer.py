"""Transfers the call to a phone number or SIP address; the flow ends there."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from engine.plugin_api import (
    E164_PATTERN,
    PHONE_DESTINATION,
    SIP_URI_PATTERN,
    TEMPLATE,
    TRANSFERRED,
    VOICE_SETTINGS,
    CallEnded,
    NodeContext,
    NodeResult,
    Services,
    VoxflowError,
    call_ended,
    ended_by,
    open_channel,
    voice_settings,
)

NODE_TYPE = "voice_transfer"
DOC = __doc__ or ""
RUNS_IN = "activity"
TALKS_TO_CALLER = True  # speaks or listens on the call's voice channel
ENGINE_ROLE = "transfer"  # a call that ends here ends as transferred
HEARS_HANGUP = True  # the voice bus says call:caller_left (engine.voice.channel_base)
SPOKEN_FIELDS = ("announce_message",)  # said to the caller: quoted in diagrams, synthesised ahead
OUTPUTS: dict[str, str] = {}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["destination"],
    "properties": {
        "destination": {
            **PHONE_DESTINATION,
            "description": "Who to connect the caller to: +15550001111 or sip:desk@example.com.",
        },
        "announce_message": {**TEMPLATE, "description": "Said to the caller before transferring."},
        **VOICE_SETTINGS,
    },
}


async def execute(config: Mapping[str, Any], context: NodeContext, services: Services) -> NodeResult:
    destination = _checked_destination(str(config["destination"]).strip(), context.node_id)
    settings = voice_settings(config, context)
    async with open_channel(services, context, settings, NODE_TYPE) as channel:
        try:
            announce = config.get("announce_message")
            if announce:
                # Not interruptible: the caller should hear where they are going.
                await channel.speak(
                    str(announce), voice=settings.voice, language=settings.language, interruptible=False
                )
            await channel.transfer(destination)
        except CallEnded as ended:
            return ended_by(ended)
    return call_ended(TRANSFERRED, f"the call was transferred to {destination}")


def _checked_destination(destination: str, node_id: str) -> str:
    """A destination filled in from a variable is checked here, once it is known."""
    if re.fullmatch(E164_PATTERN, destination) or re.fullmatch(SIP_URI_PATTERN, destination):
        return destination
    shown = destination if destination else "(nothing)"
    raise VoxflowError(
        f"the transfer destination of '{node_id}' is '{shown}', which is neither a phone "
        "number written as +<country code><number> (+15550001111) nor a SIP address "
        "(sip:desk@example.com). Check the variable it comes from."
    )
