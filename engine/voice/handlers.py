"""Counted no_input / no_match handlers, VoiceXML style.

A node's ``no_input`` and ``no_match`` are lists used in order: the first
time, the second time, ... and the last entry again once the list runs out.
Each event type keeps its own count for the whole of one node execution
(across its reprompt loop). An entry with ``next`` leaves the node through
``no_input[i].next`` after saying its ``say``; an entry without one asks
again: its ``reprompt`` is said *instead of* the prompt (write it as a full
question), or its ``say`` is said before the prompt. A node with no handler
for an event asks again with a default sentence followed by the prompt.

Unlike VoiceXML 2.0 (§5.2.2, §5.2.5), where counts are kept until the form is
entered again, counts start again at every visit to a node: voxflow has no
forms, and each visit is a new question (docs/nodes.md says so to authors).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

HandlerEvent = Literal["no_input", "no_match"]

NO_MATCH_REPROMPT = "Sorry, I didn't catch that. Could you repeat?"
NO_INPUT_REPROMPT = "Sorry, I didn't hear anything."


@dataclass(frozen=True)
class Step:
    """What to do after a no_input or no_match.

    ``exit`` set: say ``say`` (if any), then leave through ``exit``.
    Otherwise: ask again, saying ``prompt`` as the question.
    """

    say: str = ""
    prompt: str = ""
    exit: str | None = None


class HandlerCounter:
    """Counts no_input and no_match events within one node execution."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self._handlers: dict[HandlerEvent, Sequence[Mapping[str, Any]]] = {
            "no_input": config.get("no_input") or (),
            "no_match": config.get("no_match") or (),
        }
        self.counts: dict[HandlerEvent, int] = {"no_input": 0, "no_match": 0}

    def step(self, event: HandlerEvent, prompt: str) -> Step:
        """Count one ``event`` and say what follows; ``prompt`` is the node's question."""
        self.counts[event] += 1
        handlers = self._handlers[event]
        if not handlers:
            return Step(prompt=_default_reprompt(event, prompt))
        index = min(self.counts[event], len(handlers)) - 1
        handler = handlers[index]
        target = handler.get("next")
        if target:
            # A reprompt on an entry that also goes somewhere is said on the way out.
            say = handler.get("say") or handler.get("reprompt") or ""
            return Step(say=str(say), exit=f"{event}[{index}].next")
        if handler.get("reprompt"):
            return Step(prompt=str(handler["reprompt"]))
        return Step(prompt=_join(str(handler.get("say") or ""), prompt))


def _default_reprompt(event: HandlerEvent, prompt: str) -> str:
    # Like VoiceXML's default handlers, both say why and then ask the question again.
    return _join(NO_MATCH_REPROMPT if event == "no_match" else NO_INPUT_REPROMPT, prompt)


def _join(first: str, second: str) -> str:
    return " ".join(part.strip() for part in (first, second) if part and part.strip())
