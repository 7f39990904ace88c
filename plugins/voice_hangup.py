"""Says goodbye (optionally) and hangs up; the call ends here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.plugin_api import TEMPLATE, VOICE_SETTINGS, NodeContext, NodeResult, Services
from plugins._pending import not_runnable_yet

NODE_TYPE = "voice_hangup"
DOC = __doc__ or ""
RUNS_IN = "activity"
OUTPUTS: dict[str, str] = {}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "farewell_message": {**TEMPLATE, "description": "Said before hanging up."},
        **VOICE_SETTINGS,
    },
}


async def execute(config: Mapping[str, Any], context: NodeContext, services: Services) -> NodeResult:
    raise not_runnable_yet(NODE_TYPE, "the voice bus")
