"""What the voice channel takes and gives: its policy, prompts, and the results of its operations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ChannelPolicy:
    """The engine's timings and rules, in flow seconds. ``silence_check_after=0`` disables
    the silence rule."""

    silence_check_after: float = 30.0
    silence_hangup_after: float = 10.0
    silence_message: str = "Are you still there?"
    rapid_barge_ins: int = 3  # more than this many barge-ins ...
    rapid_window: float = 10.0  # ... within this many seconds: "rapid interruptions"
    agent_rejoin_timeout: float = 10.0
    # A prompt must be finished within speak_timeout plus this per character of text.
    speak_timeout: float = 15.0
    seconds_per_character: float = 0.1
    transfer_timeout: float = 60.0
    hangup_timeout: float = 5.0
    # After max_duration (or a stop), how long the agent has to send its final answer.
    grace: float = 3.0


@dataclass(frozen=True)
class Prompt:
    """What to say before listening."""

    text: str
    interruptible: bool = True
    voice: str | None = None
    language: str | None = None


@dataclass(frozen=True)
class SpeakResult:
    """How a prompt ended: completed, or interrupted ``by`` "speech", "dtmf" or "stop"."""

    interrupted: bool = False
    by: str = ""
    digit: str = ""

    @property
    def barged_in(self) -> bool:
        return self.interrupted and self.by in ("speech", "dtmf")


@dataclass(frozen=True)
class ListenResult:
    """A spoken answer, a key (when keys were accepted), or no input.

    ``barged_in``: the answer came during the prompt. ``truncated``: the caller
    was still talking at max_duration; ``transcript`` is what was heard so far.
    """

    kind: Literal["speech", "dtmf", "no_input"]
    transcript: str = ""
    confidence: float | None = None
    digits: str = ""
    barged_in: bool = False
    truncated: bool = False


@dataclass(frozen=True)
class DtmfResult:
    """Digits typed (``finished_by``: "num_digits", "finish_key" or "timeout"), or no input."""

    kind: Literal["digits", "no_input"]
    digits: str = ""
    finished_by: str = ""
    barged_in: bool = False


@dataclass(frozen=True)
class RecordResult:
    kind: Literal["recorded", "no_input"]
    url: str = ""
    transcript: str = ""
    duration: float = 0.0
