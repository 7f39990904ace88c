"""Waits for an outside event (a supervisor's approval, a payment confirmed).

Something outside the call sends the named signal to the call's workflow
(through the API or the Temporal CLI); its data is saved under ``save_as``.
If nothing arrives within ``timeout``, the call goes to ``on_timeout``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.plugin_api import (
    DURATION,
    NODE_REF,
    TEMPLATE,
    VARIABLE_NAME,
    NodeContext,
    NodeResult,
    Services,
    render,
    workflow_services,
)

NODE_TYPE = "wait_for_signal"
DOC = __doc__ or ""
WAITS = True  # it waits for the caller or the outside world
WAITS_FOR_SIGNAL = "signal"  # the field naming the signal it waits for
DIAGRAM_SHAPE = "wait"
RUNS_IN = "workflow"
SPOKEN_FIELDS = ("hold_message",)  # said to the caller: quoted in diagrams, synthesised ahead
OUTPUTS = {"<field>": "Each field of the signal's data."}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["signal", "timeout", "next", "on_timeout"],
    "properties": {
        "signal": {
            "type": "string",
            "pattern": "^[A-Za-z_][A-Za-z0-9_-]*$",
            "description": "The name of the signal to wait for, e.g. supervisor_approved.",
        },
        "timeout": {**DURATION, "description": "How long to wait."},
        "hold_message": {**TEMPLATE, "description": "Said to the caller while waiting."},
        "save_as": {**VARIABLE_NAME, "description": "Save the signal's data under this name."},
        "next": {**NODE_REF, "description": "Where to go when the signal arrives."},
        "on_timeout": {**NODE_REF, "description": "Where to go if it does not arrive in time."},
    },
}


def describe(config: Mapping[str, Any]) -> str:
    """A few words for diagrams."""
    return f"waits for {config.get('signal', '?')}"


async def execute(config: Mapping[str, Any], context: NodeContext, services: Services) -> NodeResult:
    # Runs inside the call's workflow: the wait is a durable timer raced
    # against the signal, so it survives worker restarts.
    runtime = workflow_services(services, ("receive_signal", "say"), NODE_TYPE)
    hold = config.get("hold_message")
    if hold:
        await runtime.say(render(hold, context.variables))
    waited = await runtime.receive_signal(config["signal"], float(config["timeout"]))
    if not waited.arrived:
        return NodeResult(exit="on_timeout")
    payload = waited.payload
    outputs = dict(payload) if isinstance(payload, Mapping) else {"value": payload}
    return NodeResult(exit="next", outputs=outputs)
