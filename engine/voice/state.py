"""What the plugin side of a call remembers from one voice node to the next.

A call's voice nodes run as separate activities, possibly on different
workers, so what must outlive one node is saved on the bus itself
(``VoiceBus.save_state(call_id, "plugin", ...)``), next to the streams it is
about and expiring with them. It needs nothing from the workflow, and it is
never part of the workflow's history (so it cannot make replay differ):

- ``cursor``: the id of the last event a node handled; the next node reads on
  from there, so events that arrive between two nodes are not lost.
- ``early_input``: caller input a node read but did not use: keys typed ahead
  (VoiceXML's type-ahead), or the words a caller said over an interruptible
  message, which then answer the next question instead of being dropped.
- ``keep_speech``: that caller's words were still being spoken when the node
  ended; the next node takes the rest of that utterance too.
- ``barge_ins``, ``rapid``, ``human_offered``: the "rapid interruptions" rule
  counts barge-ins across nodes (more than 3 within 10 s, in the call's whole
  life, not one node's).
- ``silence``, ``silence_checked``: how long the caller has been silent while
  being listened to, across reprompts and nodes, for "Are you still there?".
- ``agent_id``: the agent serving the call, from its ``agent_joined``; another
  one announcing itself while requests are outstanding replaced it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from engine.voice.bus import START
from engine.voice.messages import CallerInput, event_from_json, to_json

STATE_OWNER = "plugin"


@dataclass
class CallVoiceState:
    cursor: str = START
    early_input: list[str] = field(default_factory=list)  # events as JSON text
    keep_speech: bool = False
    barge_ins: list[float] = field(default_factory=list)  # clock.time() of each
    rapid: bool = False
    human_offered: bool = False
    silence: float = 0.0
    silence_checked: bool = False
    agent_id: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> CallVoiceState:
        if not data:
            return cls()
        known = {item.name for item in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def early_events(self) -> list[CallerInput]:
        events = (event_from_json(text) for text in self.early_input)
        return [event for event in events if event is not None]  # type: ignore[misc]

    def set_early_events(self, events: list[CallerInput]) -> None:
        self.early_input = [to_json(event) for event in events]
