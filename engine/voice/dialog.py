"""Ask, judge, reprompt: the loop that listen, menu, dtmf_collect and record share.

A plugin gives :func:`converse` a function that asks once (says a prompt,
waits for the caller) and judges the answer: :class:`Accepted` with the exit
to take, or :class:`NoInput` / :class:`NoMatch`. The loop counts no_input
and no_match, follows the node's handlers (engine.voice.handlers), and
applies the call-wide "rapid interruptions" rule: once a caller has cut in
more than 3 times within 10 s, and the flow enables the rule
(``rapid_interruptions: true``), prompts get shorter and, once per call, the
caller is offered a person, when the question has an answer that leads to one.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.language.node_contract import NodeResult
from engine.voice.channel import VoiceChannel
from engine.voice.handlers import HandlerCounter, HandlerEvent
from engine.voice.matching import words
from engine.voice.settings import VoiceSettings

# Words in a phrase that mean "a person" (for the offer of a human).
HUMAN_WORDS = frozenset(
    {
        "agent",
        "operator",
        "human",
        "person",
        "representative",
        "someone",
        "advisor",
        "somebody",
    }
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Accepted:
    exit: str
    outputs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NoInput:
    outputs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NoMatch:
    outputs: Mapping[str, Any] = field(default_factory=dict)


Verdict = Accepted | NoInput | NoMatch
AskOnce = Callable[[str], Awaitable[Verdict]]


@dataclass(frozen=True)
class RapidInterruptions:
    """How a node shortens its prompt and offers a person when the caller keeps cutting in."""

    shorten: Callable[[str], str]
    human_offer: str | None = None


async def converse(
    channel: VoiceChannel,
    config: Mapping[str, Any],
    settings: VoiceSettings,
    prompt: str,
    ask: AskOnce,
    rapid: RapidInterruptions | None = None,
) -> NodeResult:
    """Ask until the answer is accepted or a handler leads out of the node."""
    rapid = rapid or RapidInterruptions(first_sentence)
    counter = HandlerCounter(config)
    text = prompt
    while True:
        verdict = await ask(_adapt(text, channel, settings, rapid))
        await _note_verdict(channel, verdict)
        if isinstance(verdict, Accepted):
            return NodeResult(exit=verdict.exit, outputs=dict(verdict.outputs))
        event: HandlerEvent = "no_input" if isinstance(verdict, NoInput) else "no_match"
        step = counter.step(event, prompt)
        if step.exit is not None:
            if step.say:
                await channel.speak(
                    step.say,
                    voice=settings.voice,
                    language=settings.language,
                    interruptible=settings.interruptible(config),
                )
            return NodeResult(exit=step.exit, outputs=dict(verdict.outputs))
        text = step.prompt


async def _note_verdict(channel: VoiceChannel, verdict: Verdict) -> None:
    """Tell a recorded call's voice bus how the answer was judged (call analytics, and a
    question left unanswered on the transcript)."""
    note = getattr(channel.bus, "note_verdict", None)
    if note is not None:
        await note(
            "accepted"
            if isinstance(verdict, Accepted)
            else "no_input"
            if isinstance(verdict, NoInput)
            else "no_match"
        )


def _adapt(text: str, channel: VoiceChannel, settings: VoiceSettings, rapid: RapidInterruptions) -> str:
    if not (settings.rapid_interruptions and channel.rapid_interruptions) or not text:
        return text
    shorter = rapid.shorten(text)
    if rapid.human_offer and not channel.state.human_offered:
        channel.state.human_offered = True
        return f"{shorter} {rapid.human_offer}"
    return shorter


def first_sentence(text: str) -> str:
    """The first sentence of a prompt: what is left when a caller keeps cutting in."""
    return _SENTENCE_END.split(text.strip(), maxsplit=1)[0]


def is_low_confidence(confidence: float | None, threshold: float) -> bool:
    """Recognised with less confidence than ``threshold`` (no confidence given: trusted)."""
    return confidence is not None and confidence < threshold


def human_phrase(phrases: Sequence[str]) -> str | None:
    """The first phrase that asks for a person ("agent", "speak to someone"), if any."""
    for phrase in phrases:
        if HUMAN_WORDS.intersection(words(phrase)):
            return phrase
    return None
