"""Greets the caller: says a message at the start of the call, then goes on.

It has the same fields as voice_speak; a separate type makes the start of a
call easy to find in a flow and in its diagram.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.plugin_api import NodeContext, NodeResult, Services
from plugins import voice_speak

NODE_TYPE = "voice_greet"
DOC = __doc__ or ""
RUNS_IN = "activity"
TALKS_TO_CALLER = True  # speaks or listens on the call's voice channel
HEARS_HANGUP = True  # the voice bus says call:caller_left (engine.voice.channel_base)
SPOKEN_FIELDS = ("message",)  # said to the caller: quoted in diagrams, synthesised ahead
OUTPUTS = voice_speak.OUTPUTS
SCHEMA = voice_speak.SCHEMA


async def execute(config: Mapping[str, Any], context: NodeContext, services: Services) -> NodeResult:
    return await voice_speak.say_message(config, context, services, NODE_TYPE)
