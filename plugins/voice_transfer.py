"""Transfers the call to a phone number or SIP address; the flow ends there."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.plugin_api import (
    PHONE_DESTINATION, TEMPLATE, VOICE_SETTINGS, NodeContext, NodeResult, Services,
)
from plugins._pending import not_runnable_yet

NODE_TYPE = "voice_transfer"
DOC = __doc__ or ""
RUNS_IN = "activity"
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
    raise not_runnable_yet(NODE_TYPE, "the voice bus")
