"""What crosses the voice bus: commands (plugin → agent) and events (agent → plugin).

Every message is a frozen dataclass with a ``TYPE`` and a ``request_id``.
A command's ``request_id`` is new and unique; an event's is the id of the
command it answers, or ``""`` for events nobody asked for (``agent_joined``,
``call:caller_left``, a key pressed while nothing listens).

On the wire a message is one JSON object: ``{"type": "speak", "request_id":
"r1", "text": "Hello", ...}``. Decoding ignores fields it does not know, so
an agent built against a newer voxflow can add fields without breaking an
older worker; a message of an unknown type decodes to ``None`` (skipped).

What an agent side must do (the LiveKit agent, the simulator, a harness):

- On joining a call, publish ``agent_joined``. Read commands from the start
  of the stream if no agent served the call before (commands may be waiting),
  else from ``VoiceBus.last_command_id``: after ``agent_joined`` the plugin
  side sends again whatever was outstanding. Publish ``call:agent_left`` when
  leaving while the call goes on; ``call:caller_left`` when the caller hangs up.
- ``speak``/``play``: tts:started, then tts:complete, or tts:interrupted when
  an interruptible prompt is cut by the caller (``by`` speech or dtmf) or by a
  ``stop``. A key that cuts a prompt is *also* sent as a dtmf event, and the
  caller's speech:started (or dtmf) should come before the tts:interrupted.
- ``listen``, ``collect_dtmf``, ``record`` may carry ``upcoming``: texts the call
  may say next (filled in already). An agent with a prompt cache may synthesise
  them while the caller has the turn, never before speech the caller waits for,
  and never say them: they only warm the cache (engine.agent.next_prompts).
- ``listen``: speech:started, speech:partial..., speech:complete after
  ``end_silence_ms`` of silence or at ``max_duration``; with ``dtmf`` a key
  press is a dtmf event. Speech during a prompt that is not interruptible,
  with no listen active, is not reported.
- ``collect_dtmf``: one dtmf event per key (the plugin side counts and times them).
- ``record``: speech:started when the caller is heard, then record:complete
  (at silence, ``finish_on_key``, ``max_duration``, or a ``stop``).
- ``transfer`` / ``hangup``: transfer:complete or ``error:transfer``; hangup:complete.
- Anything that fails: ``error:<code>`` with the request id and a plain message.

Which request id an agent puts on caller input (speech:*, dtmf): the active
listen / collect_dtmf / record request if there is one, else the speak
request the input interrupted, else ``""``. The plugin side treats input for
requests it did not send as early input (see engine.voice.state).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, ClassVar, TypeAlias

# ---------------------------------------------------------------- commands


@dataclass(frozen=True, kw_only=True)
class Speak:
    """Say ``text``. Answered by tts:started, then tts:complete or tts:interrupted."""

    TYPE: ClassVar[str] = "speak"
    request_id: str
    text: str
    voice: str | None = None
    language: str | None = None
    interruptible: bool = True
    traceparent: str = ""  # W3C trace context of the node that sent it (tracing on)


@dataclass(frozen=True, kw_only=True)
class Play:
    """Play an audio file (a URL, or ``"beep"``). Answered like speak (tts:* events)."""

    TYPE: ClassVar[str] = "play"
    request_id: str
    audio: str
    interruptible: bool = True
    traceparent: str = ""  # W3C trace context of the node that sent it (tracing on)


@dataclass(frozen=True, kw_only=True)
class Listen:
    """Listen for the caller's answer; it ends after ``end_silence_ms`` of silence.

    Answered by speech:started, speech:partial..., speech:complete. The agent
    cuts an answer at ``max_duration`` seconds. ``no_input_timeout`` is a hint
    (the plugin side keeps the no-input timer). With ``dtmf`` a key press also
    answers (a menu); ``expected_phrases`` help recognisers that take a grammar.
    """

    TYPE: ClassVar[str] = "listen"
    request_id: str
    end_silence_ms: int = 800
    max_duration: float = 30.0
    no_input_timeout: float = 5.0
    expected_phrases: tuple[str, ...] = ()
    language: str | None = None
    dtmf: bool = False
    upcoming: tuple[str, ...] = ()  # what the call may say next: prepare it (see below)
    traceparent: str = ""  # W3C trace context of the node that sent it (tracing on)


@dataclass(frozen=True, kw_only=True)
class CollectDtmf:
    """Pass key presses on (one dtmf event per key); the plugin side counts them.

    The limits are sent so that an agent able to gather digits itself may do so.
    """

    TYPE: ClassVar[str] = "collect_dtmf"
    request_id: str
    num_digits: int | None = None
    finish_on_key: str = ""
    timeout: float = 5.0
    inter_digit_timeout: float = 3.0
    upcoming: tuple[str, ...] = ()  # what the call may say next: prepare it
    traceparent: str = ""  # W3C trace context of the node that sent it (tracing on)


@dataclass(frozen=True, kw_only=True)
class Record:
    """Record the caller. Answered by record:complete (also after a stop for it)."""

    TYPE: ClassVar[str] = "record"
    request_id: str
    max_duration: float = 120.0
    beep: bool = True
    finish_on_key: str = ""
    upcoming: tuple[str, ...] = ()  # what the call may say next: prepare it
    traceparent: str = ""  # W3C trace context of the node that sent it (tracing on)


@dataclass(frozen=True, kw_only=True)
class Transfer:
    """Transfer the call (tel: number or SIP URI). Answered by transfer:complete or error:*."""

    TYPE: ClassVar[str] = "transfer"
    request_id: str
    destination: str
    traceparent: str = ""  # W3C trace context of the node that sent it (tracing on)


@dataclass(frozen=True, kw_only=True)
class Hangup:
    """End the call. Answered by hangup:complete."""

    TYPE: ClassVar[str] = "hangup"
    request_id: str
    reason: str = ""
    traceparent: str = ""  # W3C trace context of the node that sent it (tracing on)


@dataclass(frozen=True, kw_only=True)
class Stop:
    """Stop the request ``target`` (a prompt, a listen, a recording); no answer is awaited.

    A stopped speak or play ends with tts:interrupted (by ``"stop"``), a stopped
    record with record:complete for what was recorded so far.
    """

    TYPE: ClassVar[str] = "stop"
    request_id: str
    target: str
    traceparent: str = ""  # W3C trace context of the node that sent it (tracing on)


Command: TypeAlias = Speak | Play | Listen | CollectDtmf | Record | Transfer | Hangup | Stop

# ------------------------------------------------------------------ events


@dataclass(frozen=True, kw_only=True)
class AgentJoined:
    TYPE: ClassVar[str] = "agent_joined"
    request_id: str = ""
    agent_id: str = ""


@dataclass(frozen=True, kw_only=True)
class AgentLeft:
    """The agent process left the call (it may come back: a new agent_joined).

    ``agent_id`` names the agent that left (its ``agent_joined``'s), so a late
    report about an agent already replaced is not taken for the current one.
    """

    TYPE: ClassVar[str] = "call:agent_left"
    request_id: str = ""
    reason: str = ""
    agent_id: str = ""


@dataclass(frozen=True, kw_only=True)
class CallerLeft:
    """The caller hung up."""

    TYPE: ClassVar[str] = "call:caller_left"
    request_id: str = ""
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class SpeechStarted:
    TYPE: ClassVar[str] = "speech:started"
    request_id: str = ""


@dataclass(frozen=True, kw_only=True)
class SpeechPartial:
    """An interim transcript, for live display; may still change."""

    TYPE: ClassVar[str] = "speech:partial"
    request_id: str = ""
    transcript: str
    confidence: float | None = None


@dataclass(frozen=True, kw_only=True)
class SpeechComplete:
    """The caller's final transcript of one answer."""

    TYPE: ClassVar[str] = "speech:complete"
    request_id: str = ""
    transcript: str
    confidence: float | None = None
    latency: float | None = None  # STT: seconds from the caller's last sound heard to this


@dataclass(frozen=True, kw_only=True)
class TtsStarted:
    TYPE: ClassVar[str] = "tts:started"
    request_id: str
    latency: float | None = None  # TTS: seconds from the command to its first audio
    cached: bool | None = None  # its audio came from the prompt cache (None: not said)


@dataclass(frozen=True, kw_only=True)
class TtsComplete:
    TYPE: ClassVar[str] = "tts:complete"
    request_id: str


@dataclass(frozen=True, kw_only=True)
class TtsInterrupted:
    """A prompt stopped early: ``by`` is ``"speech"``, ``"dtmf"`` (then ``digit``) or ``"stop"``."""

    TYPE: ClassVar[str] = "tts:interrupted"
    request_id: str
    by: str = "speech"
    digit: str = ""


@dataclass(frozen=True, kw_only=True)
class Dtmf:
    """One key press: 0-9, * or #."""

    TYPE: ClassVar[str] = "dtmf"
    request_id: str = ""
    digit: str


@dataclass(frozen=True, kw_only=True)
class RecordComplete:
    TYPE: ClassVar[str] = "record:complete"
    request_id: str
    url: str = ""
    transcript: str = ""
    duration: float = 0.0


@dataclass(frozen=True, kw_only=True)
class TransferComplete:
    TYPE: ClassVar[str] = "transfer:complete"
    request_id: str


@dataclass(frozen=True, kw_only=True)
class HangupComplete:
    TYPE: ClassVar[str] = "hangup:complete"
    request_id: str


@dataclass(frozen=True, kw_only=True)
class ErrorEvent:
    """``error:<code>``: the agent could not do what a request asked (``tts``, ``transfer``...)."""

    TYPE: ClassVar[str] = "error"
    request_id: str = ""
    code: str = "agent"
    message: str = ""


Event: TypeAlias = (
    AgentJoined
    | AgentLeft
    | CallerLeft
    | SpeechStarted
    | SpeechPartial
    | SpeechComplete
    | TtsStarted
    | TtsComplete
    | TtsInterrupted
    | Dtmf
    | RecordComplete
    | TransferComplete
    | HangupComplete
    | ErrorEvent
)
CallerInput: TypeAlias = SpeechStarted | SpeechPartial | SpeechComplete | Dtmf
CALLER_INPUT = (SpeechStarted, SpeechPartial, SpeechComplete, Dtmf)

_COMMANDS: dict[str, type[Any]] = {
    cls.TYPE: cls for cls in (Speak, Play, Listen, CollectDtmf, Record, Transfer, Hangup, Stop)
}
_EVENTS: dict[str, type[Any]] = {
    cls.TYPE: cls
    for cls in (
        AgentJoined,
        AgentLeft,
        CallerLeft,
        SpeechStarted,
        SpeechPartial,
        SpeechComplete,
        TtsStarted,
        TtsComplete,
        TtsInterrupted,
        Dtmf,
        RecordComplete,
        TransferComplete,
        HangupComplete,
    )
}


_UNSENT_WHEN_EMPTY = frozenset({"traceparent", "latency", "upcoming", "cached"})


def message_type(message: Command | Event) -> str:
    """The wire name: ``speak``, ``tts:complete``, ``error:transfer``..."""
    if isinstance(message, ErrorEvent):
        return f"error:{message.code}"
    return message.TYPE


def to_json(message: Command | Event) -> str:
    data: dict[str, Any] = {"type": message_type(message)}
    for item in dataclasses.fields(message):
        if isinstance(message, ErrorEvent) and item.name == "code":
            continue  # carried in the type
        value = getattr(message, item.name)
        if item.name in _UNSENT_WHEN_EMPTY and (value is None or value == "" or value == ()):
            continue  # tracing's and timing's fields, when there is nothing in them
        data[item.name] = list(value) if isinstance(value, tuple) else value
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def command_from_json(text: str | bytes) -> Command | None:
    """A command, or None for a type this version does not know."""
    data = _object(text)
    cls = _COMMANDS.get(str(data.get("type", "")))
    return None if cls is None else _build(cls, data)  # type: ignore[no-any-return]


def event_from_json(text: str | bytes) -> Event | None:
    """An event, or None for a type this version does not know."""
    data = _object(text)
    kind = str(data.get("type", ""))
    if kind.startswith("error:"):
        data["code"] = kind.removeprefix("error:") or "agent"
        return _build(ErrorEvent, data)  # type: ignore[no-any-return]
    cls = _EVENTS.get(kind)
    return None if cls is None else _build(cls, data)  # type: ignore[no-any-return]


def _object(text: str | bytes) -> dict[str, Any]:
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"a voice bus message must be a JSON object, not {type(data).__name__}")
    return data


def _build(cls: type[Any], data: dict[str, Any]) -> Any:
    known = {item.name for item in dataclasses.fields(cls)}
    values = {
        key: tuple(value) if isinstance(value, list) else value for key, value in data.items() if key in known
    }
    return cls(**values)
