"""Helpers the voice node plugins share: a channel for the node, and ending the call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.language.node_contract import NodeContext, NodeResult
from engine.voice.channel import Prompt, VoiceChannel
from engine.voice.errors import CallEnded
from engine.voice.services import upcoming_prompts, voice_bus, voice_clock
from engine.voice.settings import VoiceSettings


def open_channel(
    services: object, context: NodeContext, settings: VoiceSettings, node_type: str
) -> VoiceChannel:
    """A channel for this node's call (use it with ``async with``)."""
    return VoiceChannel(
        voice_bus(services, node_type),
        context.call_id,
        clock=voice_clock(services),
        policy=settings.policy(),
        upcoming=upcoming_prompts(services),
    )


def prompt(text: str | None, settings: VoiceSettings, config: Mapping[str, Any]) -> Prompt | None:
    """The node's prompt with its voice, language and interruptibility; None for no text."""
    if not text:
        return None
    return Prompt(text, settings.interruptible(config), settings.voice, settings.language)


def call_ended(status: str, reason: str) -> NodeResult:
    """A result that ends the call: no exit, and the status the call gets.

    The runtime ends a call when a node returns no exit, and takes the status
    and reason from the outputs ``status`` / ``reason`` (as for a subflow that
    ended the call).
    """
    return NodeResult(exit="", outputs={"status": status, "reason": reason})


def ended_by(error: CallEnded) -> NodeResult:
    return call_ended(error.status, error.reason)
