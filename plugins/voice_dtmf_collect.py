"""Collects digits the caller types on the keypad (an account number, a PIN)."""

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
    NoMatch,
    Services,
    Verdict,
    converse,
    ended_by,
    open_channel,
    prompt,
    voice_settings,
)

NODE_TYPE = "voice_dtmf_collect"
DOC = __doc__ or ""
WAITS = True  # it waits for the caller or the outside world
RUNS_IN = "activity"
TALKS_TO_CALLER = True  # speaks or listens on the call's voice channel
HEARS_HANGUP = True  # the voice bus says call:caller_left (engine.voice.channel_base)
SPOKEN_FIELDS = ("prompt",)  # said to the caller: quoted in diagrams, synthesised ahead
OUTPUTS = {"digits": "The digits typed, as text (leading zeros kept)."}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["next"],
    "properties": {
        "prompt": {**TEMPLATE, "description": "What to ask for."},
        "num_digits": {
            "type": "integer",
            "minimum": 1,
            "maximum": 32,
            "description": "Stop after this many digits (the finish key may end the input "
            "sooner; a pause before this many is no match).",
        },
        "finish_on_key": {
            "type": "string",
            "pattern": "^[#*]?$",
            "description": "A key that ends the input early (# or *), in quotes.",
        },
        "timeout": {**DURATION, "description": "How long to wait for each digit."},
        "inter_digit_timeout": {
            **DURATION,
            "description": "How long to wait for the next digit once the caller has started "
            "typing (default: timeout, or 3s).",
        },
        "interruptible": {"type": "boolean", "description": "Whether a key press cuts the prompt."},
        **VOICE_SETTINGS,
        "save_as": {**VARIABLE_NAME, "description": "Save the digits under this name."},
        "no_input": {**EVENT_HANDLERS, "description": "What to do when no key is pressed."},
        "no_match": {**EVENT_HANDLERS, "description": "What to do when too few digits come."},
        "next": {**NODE_REF, "description": "Where to go with the digits."},
    },
}


DEFAULT_INTER_DIGIT_TIMEOUT = 3.0


async def execute(config: Mapping[str, Any], context: NodeContext, services: Services) -> NodeResult:
    settings = voice_settings(config, context)
    num_digits = config.get("num_digits")
    finish_on_key = str(config.get("finish_on_key") or "")
    # ``timeout`` is this node's wait for each digit (not a limit on the whole node).
    per_digit = config.get("timeout")
    first_wait = float(per_digit) if per_digit is not None else settings.no_input_timeout
    between = config.get("inter_digit_timeout")
    if between is None:
        between = per_digit if per_digit is not None else DEFAULT_INTER_DIGIT_TIMEOUT

    async with open_channel(services, context, settings, NODE_TYPE) as channel:

        async def ask(text: str) -> Verdict:
            typed = await channel.collect_dtmf(
                prompt=prompt(text, settings, config),
                num_digits=int(num_digits) if num_digits is not None else None,
                finish_on_key=finish_on_key,
                timeout=first_wait,
                inter_digit_timeout=float(between),
            )
            if typed.kind == "no_input":
                return NoInput({"digits": ""})
            outputs = {"digits": typed.digits}
            # The finish key accepts fewer digits ("up to 6 digits, then pound"); a
            # pause does not: the caller stopped before num_digits.
            too_few = (
                typed.finished_by == "timeout"
                and num_digits is not None
                and len(typed.digits) < int(num_digits)
            )
            if not typed.digits or too_few:
                return NoMatch(outputs)
            return Accepted("next", outputs)

        try:
            return await converse(channel, config, settings, str(config.get("prompt") or ""), ask)
        except CallEnded as ended:
            return ended_by(ended)
