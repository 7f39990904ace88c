"""Asks a question and listens to what the caller says.

The transcript and the recogniser's confidence (0 to 1) are saved under
``save_as``. Give ``expected_phrases`` when you know what callers will say:
recognition is far more accurate with them, and an answer that matches none
of them counts as no match.
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
    first_sentence,
    human_phrase,
    is_low_confidence,
    match_phrases,
    open_channel,
    prompt,
    voice_settings,
)

NODE_TYPE = "voice_listen"
DOC = __doc__ or ""
WAITS = True  # it waits for the caller or the outside world
RUNS_IN = "activity"
TALKS_TO_CALLER = True  # speaks or listens on the call's voice channel
HEARS_HANGUP = True  # the voice bus says call:caller_left (engine.voice.channel_base)
SPOKEN_FIELDS = ("prompt",)  # said to the caller: quoted in diagrams, synthesised ahead
OUTPUTS = {
    "transcript": "What the caller said, as text.",
    "confidence": "How sure the recogniser is, from 0 to 1.",
    "phrase": "The expected phrase the answer matched, as written in expected_phrases.",
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["next"],
    "properties": {
        "prompt": {**TEMPLATE, "description": "What to ask before listening."},
        "max_duration": {**DURATION, "description": "The longest answer to listen to."},
        "end_silence_ms": {"$ref": "#/$defs/settings/properties/end_silence_ms"},
        "expected_phrases": {**PHRASES, "description": "What callers are likely to say."},
        "interruptible": {"type": "boolean", "description": "Whether the caller may cut in."},
        **VOICE_SETTINGS,
        "low_confidence_threshold": {"$ref": "#/$defs/settings/properties/low_confidence_threshold"},
        "save_as": {**VARIABLE_NAME, "description": "Save transcript and confidence under this name."},
        "no_input": {**EVENT_HANDLERS, "description": "What to do when the caller says nothing."},
        "no_match": {
            **EVENT_HANDLERS,
            "description": "What to do when the answer is unclear or matches no expected phrase.",
        },
        "next": {**NODE_REF, "description": "Where to go with the answer."},
    },
}


DEFAULT_END_SILENCE_MS = 800
DEFAULT_MAX_DURATION = 30.0


async def execute(config: Mapping[str, Any], context: NodeContext, services: Services) -> NodeResult:
    settings = voice_settings(config, context)
    phrases = tuple(str(p) for p in config.get("expected_phrases") or ())
    offer = human_phrase(phrases)
    rapid = RapidInterruptions(first_sentence, f"To speak to a person, say {offer}." if offer else None)

    async with open_channel(services, context, settings, NODE_TYPE) as channel:

        async def ask(text: str) -> Verdict:
            heard = await channel.listen(
                prompt=prompt(text, settings, config),
                end_silence_ms=int(config.get("end_silence_ms") or DEFAULT_END_SILENCE_MS),
                max_duration=float(config.get("max_duration") or DEFAULT_MAX_DURATION),
                no_input_timeout=settings.no_input_timeout,
                expected_phrases=phrases,
                language=settings.language,
            )
            if heard.kind == "no_input":
                return NoInput(_outputs("", None, ""))
            outputs = _outputs(heard.transcript, heard.confidence, "")
            unclear = not heard.transcript.strip() or is_low_confidence(
                heard.confidence, settings.low_confidence_threshold
            )
            if unclear:
                return NoMatch(outputs)
            if not phrases:
                return Accepted("next", outputs)
            match = match_phrases(heard.transcript, [[phrase] for phrase in phrases])
            if match is None:
                return NoMatch(outputs)
            return Accepted("next", _outputs(heard.transcript, heard.confidence, match.phrase))

        try:
            return await converse(channel, config, settings, str(config.get("prompt") or ""), ask, rapid)
        except CallEnded as ended:
            return ended_by(ended)


def _outputs(transcript: str, confidence: float | None, phrase: str) -> dict[str, Any]:
    return {"transcript": transcript, "confidence": confidence, "phrase": phrase}
