"""Offers choices: the caller presses a key or says a phrase, and the call goes that way.

Spoken answers are matched ignoring case, punctuation and filler words
("um, my balance please" matches the phrase "my balance"); the longest phrase
that matches wins. A key pressed while the menu is read out chooses at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.plugin_api import (
    DURATION,
    EVENT_HANDLERS,
    NODE_REF,
    PHRASES,
    TEMPLATE,
    VARIABLE_NAME,
    VOICE_SETTINGS,
    Accepted,
    CallEnded,
    NodeContext,
    NodeResult,
    NoInput,
    NoMatch,
    RapidInterruptions,
    Services,
    Verdict,
    converse,
    ended_by,
    human_phrase,
    is_low_confidence,
    match_phrases,
    open_channel,
    prompt,
    spoken_key,
    voice_settings,
)

NODE_TYPE = "voice_menu"
DOC = __doc__ or ""
WAITS = True  # it waits for the caller or the outside world
RUNS_IN = "activity"
TALKS_TO_CALLER = True  # speaks or listens on the call's voice channel
HEARS_HANGUP = True  # the voice bus says call:caller_left (engine.voice.channel_base)
SPOKEN_FIELDS = ("prompt",)  # said to the caller: quoted in diagrams, synthesised ahead
OUTPUTS = {
    "key": "The key of the option chosen (empty if that option has no key).",
    "transcript": "What the caller said, if they spoke.",
    "confidence": "How sure the recogniser is, from 0 to 1.",
    "phrase": "The option's phrase that the caller's words matched, if they spoke.",
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["prompt", "options"],
    "properties": {
        "prompt": {**TEMPLATE, "description": "The choices, read to the caller."},
        "options": {
            "type": "array",
            "minItems": 1,
            "description": "The choices: a key to press and/or phrases to say, and where each goes.",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["next"],
                "anyOf": [{"required": ["key"]}, {"required": ["phrases"]}],
                "x-hint": "Give each option a 'key' to press, 'phrases' to say, or both.",
                "properties": {
                    "key": {
                        "type": "string",
                        "pattern": "^[0-9*#]$",
                        "description": 'One phone key: 0-9, * or #, in quotes ("1").',
                        "x-hint": 'Write one phone key in quotes, e.g. key: "1".',
                    },
                    "phrases": PHRASES,
                    "next": {**NODE_REF, "description": "Where this choice goes."},
                },
            },
        },
        "max_duration": {**DURATION, "description": "The longest spoken answer to listen to."},
        "end_silence_ms": {"$ref": "#/$defs/settings/properties/end_silence_ms"},
        "interruptible": {"type": "boolean", "description": "Whether the caller may cut in."},
        **VOICE_SETTINGS,
        "low_confidence_threshold": {"$ref": "#/$defs/settings/properties/low_confidence_threshold"},
        "save_as": {**VARIABLE_NAME, "description": "Save the choice under this name."},
        "no_input": {**EVENT_HANDLERS, "description": "What to do when the caller does nothing."},
        "no_match": {**EVENT_HANDLERS, "description": "What to do when no option matches."},
    },
}


DEFAULT_MAX_DURATION = 15.0
DEFAULT_END_SILENCE_MS = 800


async def execute(config: Mapping[str, Any], context: NodeContext, services: Services) -> NodeResult:
    settings = voice_settings(config, context)
    options: list[Mapping[str, Any]] = list(config["options"])
    keys = {str(option["key"]): index for index, option in enumerate(options) if "key" in option}
    choices = [[str(p) for p in option.get("phrases") or ()] for option in options]
    everything = tuple(phrase for phrases in choices for phrase in phrases)

    async with open_channel(services, context, settings, NODE_TYPE) as channel:

        async def ask(text: str) -> Verdict:
            heard = await channel.listen(
                prompt=prompt(text, settings, config),
                end_silence_ms=int(config.get("end_silence_ms") or DEFAULT_END_SILENCE_MS),
                max_duration=float(config.get("max_duration") or DEFAULT_MAX_DURATION),
                no_input_timeout=settings.no_input_timeout,
                expected_phrases=everything,
                dtmf=bool(keys),
                language=settings.language,
            )
            if heard.kind == "no_input":
                return NoInput(_outputs())
            if heard.kind == "dtmf":
                chosen = keys.get(heard.digits)
                if chosen is None:
                    return NoMatch(_outputs(key=heard.digits))
                return _chose(options, chosen, _outputs(key=heard.digits))
            outputs = _outputs(transcript=heard.transcript, confidence=heard.confidence)
            if not heard.transcript.strip() or is_low_confidence(
                heard.confidence, settings.low_confidence_threshold
            ):
                return NoMatch(outputs)
            match = match_phrases(heard.transcript, choices)
            if match is not None:
                return _chose(options, match.index, {**outputs, "phrase": match.phrase})
            said_key = spoken_key(heard.transcript)  # "press one"
            if said_key is not None and said_key in keys:
                return _chose(options, keys[said_key], outputs)
            return NoMatch(outputs)

        try:
            return await converse(
                channel, config, settings, str(config["prompt"]), ask, _rapid_interruptions(options)
            )
        except CallEnded as ended:
            return ended_by(ended)


def _chose(options: list[Mapping[str, Any]], index: int, outputs: dict[str, Any]) -> Accepted:
    return Accepted(f"options[{index}].next", {**outputs, "key": str(options[index].get("key", ""))})


def _outputs(
    key: str = "", transcript: str = "", confidence: float | None = None, phrase: str = ""
) -> dict[str, Any]:
    return {"key": key, "transcript": transcript, "confidence": confidence, "phrase": phrase}


def _rapid_interruptions(options: list[Mapping[str, Any]]) -> RapidInterruptions:
    """The menu read as briefly as possible, and an offer of the option that reaches a person."""
    keyed: list[str] = []
    spoken: list[str] = []
    offer = None
    for option in options:
        phrases = [str(p) for p in option.get("phrases") or ()]
        key = option.get("key")
        if key is not None:
            keyed.append(f"{key} for {phrases[0]}" if phrases else str(key))
        else:
            spoken.append(phrases[0])
        person = human_phrase(phrases)
        if offer is None and person is not None:
            offer = (
                f"To speak to a person, say {person} or press {key}."
                if key is not None
                else f"To speak to a person, say {person}."
            )
    sentences = []
    if keyed:
        sentences.append("Press " + ", ".join(keyed) + ".")
    if spoken:
        sentences.append(("Or say " if keyed else "Say ") + " or ".join(spoken) + ".")
    short = " ".join(sentences)
    return RapidInterruptions(lambda _text: short, offer)
