"""The per-call client API voice node plugins use: speak, listen, collect keys, record, ...

::

    async with VoiceChannel(bus, call_id, clock=clock) as channel:
        result = await channel.listen(prompt=Prompt("How can I help?"), no_input_timeout=5)

A channel lives for one node's execution. It sends commands and reads the
call's events from where the previous node stopped (see engine.voice.state),
and it keeps the timers that belong to the engine rather than to the audio:
no input, inter-digit, max_duration as a backstop, the agent's answer
timeouts, and the call-wide silence rule ("Are you still there?", then hang
up). The agent keeps the timers that need the audio: end of speech after
``end_silence_ms``, cutting an answer at ``max_duration``.

Barge-in: for an interruptible prompt the listen (or collect_dtmf) command is
sent *before* the speak command, so the agent hears the caller while it
speaks, stops the prompt when they cut in, and what they said or pressed is
the answer. For a prompt that is not interruptible, listening starts after it
and input during it is dropped (VoiceXML's bargein="false").

Cancellation: when the node's activity is cancelled (a hangup signal, a
timeout), every request still outstanding gets a ``stop`` command before the
CancelledError goes on.

Ops raise :class:`~engine.voice.errors.CallEnded` when the caller hangs up or
the silence rule hangs up, and :class:`~engine.voice.errors.VoiceError` when
the agent fails or stops answering.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, TypeVar

from engine.voice.bus import StreamCursor, VoiceBus
from engine.voice.clock import REAL_CLOCK, Clock
from engine.voice.errors import (
    COMPLETED, USER_HANGUP, AgentError, AgentTimeout, CallEnded,
)
from engine.voice.messages import (
    CALLER_INPUT, AgentJoined, AgentLeft, CallerInput, CallerLeft, CollectDtmf, Command, Dtmf,
    ErrorEvent, Event, Hangup, HangupComplete, Listen, Play, Record, RecordComplete, Speak,
    SpeechComplete, SpeechPartial, SpeechStarted, Stop, Transfer, TransferComplete,
    TtsComplete, TtsInterrupted,
)
from engine.voice.state import STATE_OWNER, CallVoiceState

_T = TypeVar("_T")
# How often one operation is started again after the agent left and another came back.
MAX_RESTARTS = 3


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


class _Rejoined(Exception):
    """The agent left and a new one joined: the current operation starts again."""


class _Silence:
    """The call-wide silence rule during one wait for input (see CallVoiceState.silence)."""

    def __init__(self, channel: VoiceChannel) -> None:
        self.channel = channel
        self.started = channel.clock.monotonic()
        self.no_input_suppressed = False  # after "Are you still there?" only hang-up counts

    def deadline(self) -> float | None:
        policy, state = self.channel.policy, self.channel.state
        if policy.silence_check_after <= 0:
            return None
        limit = policy.silence_check_after
        if state.silence_checked:
            limit += policy.silence_hangup_after
        return self.started + (limit - state.silence)

    def account(self) -> None:
        """The wait ended without input: add its length to the call's silence."""
        now = self.channel.clock.monotonic()
        self.channel.state.silence += max(now - self.started, 0.0)
        self.started = now


class VoiceChannel:
    """One node's conversation with the agent side of a call (see the module docstring)."""

    def __init__(
        self,
        bus: VoiceBus,
        call_id: str,
        *,
        clock: Clock = REAL_CLOCK,
        policy: ChannelPolicy | None = None,
    ) -> None:
        self.bus = bus
        self.call_id = call_id
        self.clock = clock
        self.policy = policy or ChannelPolicy()
        self.state = CallVoiceState()
        self._prefix = uuid.uuid4().hex[:10]
        self._numbers = itertools.count(1)
        self._cursor: StreamCursor[Event] = StreamCursor(
            functools.partial(bus.read_events, call_id)
        )
        self._own: set[str] = set()  # every request this channel sent
        self._active: set[str] = set()  # sent and not yet answered or stopped
        self._stopped: set[str] = set()  # input for these is late: dropped
        self._pending: deque[CallerInput] = deque()
        self._deaf = False  # a prompt that is not interruptible is playing
        self._keep_speech = False
        self._speech_barge_in = False  # our prompt was cut by words nobody has used yet
        self._opened = False

    # ---- lifetime ---------------------------------------------------------

    async def __aenter__(self) -> VoiceChannel:
        await self.open()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def open(self) -> None:
        self.state = CallVoiceState.from_dict(await self.bus.load_state(self.call_id, STATE_OWNER))
        self._cursor = StreamCursor(functools.partial(self.bus.read_events, self.call_id),
                                    self.state.cursor)
        self._pending.extend(self.state.early_events())
        self._keep_speech = self.state.keep_speech
        self._opened = True

    async def close(self) -> None:
        """Save where this node stopped, for the next one (also when cancelled)."""
        if not self._opened:
            return
        self._opened = False
        # Keys typed ahead always carry over; words only when they interrupted
        # our own message and no question of ours took them (see CallVoiceState).
        carried = [
            event for event in self._pending
            if isinstance(event, Dtmf)
            or (self._speech_barge_in and event.request_id not in self._stopped)
        ]
        self.state.cursor = self._cursor.position
        self.state.set_early_events(carried)
        self.state.keep_speech = self._speech_barge_in and not any(
            isinstance(event, SpeechComplete) for event in carried
        )
        await _shielded(self.bus.save_state(self.call_id, STATE_OWNER, self.state.to_dict()))

    # ---- what plugins call ------------------------------------------------

    async def speak(
        self,
        text: str,
        *,
        voice: str | None = None,
        language: str | None = None,
        interruptible: bool = True,
    ) -> SpeakResult:
        """Say ``text``; returns when it was said or interrupted."""
        prompt = Prompt(text, interruptible, voice, language)
        return await self._restartable(lambda: self._say(prompt))

    async def play(self, audio: str, *, interruptible: bool = True) -> SpeakResult:
        """Play an audio file (a URL, or "beep")."""

        async def once() -> SpeakResult:
            request = Play(request_id=self._new_id(), audio=audio, interruptible=interruptible)
            return await self._await_output(request, interruptible,
                                            self.policy.speak_timeout)

        return await self._restartable(once)

    async def listen(
        self,
        *,
        prompt: Prompt | None = None,
        end_silence_ms: int = 800,
        max_duration: float = 30.0,
        no_input_timeout: float = 5.0,
        expected_phrases: tuple[str, ...] = (),
        dtmf: bool = False,
        language: str | None = None,
    ) -> ListenResult:
        """Say ``prompt`` (if any) and get the caller's answer; with ``dtmf`` a key answers too."""

        def command() -> Listen:
            return Listen(
                request_id=self._new_id(), end_silence_ms=end_silence_ms,
                max_duration=max_duration, no_input_timeout=no_input_timeout,
                expected_phrases=tuple(expected_phrases), language=language, dtmf=dtmf,
            )

        async def once() -> ListenResult:
            request = command()
            barged = await self._prompt_then(request, prompt, accept_dtmf=dtmf)
            return await self._await_answer(request.request_id, barged, no_input_timeout,
                                            max_duration, dtmf)

        return await self._restartable(once)

    async def collect_dtmf(
        self,
        *,
        prompt: Prompt | None = None,
        num_digits: int | None = None,
        finish_on_key: str = "",
        timeout: float = 5.0,
        inter_digit_timeout: float = 3.0,
    ) -> DtmfResult:
        """Say ``prompt`` (if any) and collect digits.

        Collection ends at ``num_digits`` digits, at ``finish_on_key`` (not part
        of the digits), or ``inter_digit_timeout`` after the last key; with no
        key at all within ``timeout`` it is no input.
        """

        async def once() -> DtmfResult:
            request = CollectDtmf(
                request_id=self._new_id(), num_digits=num_digits, finish_on_key=finish_on_key,
                timeout=timeout, inter_digit_timeout=inter_digit_timeout,
            )
            barged = await self._prompt_then(request, prompt, accept_dtmf=True)
            return await self._await_digits(request.request_id, barged, num_digits,
                                            finish_on_key, timeout, inter_digit_timeout)

        return await self._restartable(once)

    async def record(
        self,
        *,
        prompt: Prompt | None = None,
        max_duration: float = 120.0,
        beep: bool = True,
        finish_on_key: str = "",
        no_input_timeout: float = 5.0,
    ) -> RecordResult:
        """Say ``prompt`` (if any), then record until silence, ``finish_on_key`` or max_duration.

        No speech (the agent's speech:started) within ``no_input_timeout`` is no input.
        """

        async def once() -> RecordResult:
            if prompt is not None:
                await self._say(prompt)
            # Anything said or pressed before the recording started is not part of it.
            self._pending.clear()
            request = Record(request_id=self._new_id(), max_duration=max_duration, beep=beep,
                             finish_on_key=finish_on_key)
            await self._send(request)
            return await self._await_recording(request.request_id, max_duration, finish_on_key,
                                               no_input_timeout)

        return await self._restartable(once)

    async def transfer(self, destination: str) -> None:
        """Transfer the call; raises AgentError if the agent reports that it failed."""

        async def once() -> None:
            request = Transfer(request_id=self._new_id(), destination=destination)
            await self._send(request)
            await self._await_reply(request.request_id, TransferComplete,
                                    self.policy.transfer_timeout,
                                    f"the transfer to {destination}")

        await self._restartable(once)
        await self.bus.end_call(self.call_id)

    async def hangup(self, reason: str = "") -> None:
        """End the call. Does not fail if the call is already gone."""
        request = Hangup(request_id=self._new_id(), reason=reason)
        try:
            await self._send(request)
            await self._await_reply(request.request_id, HangupComplete,
                                    self.policy.hangup_timeout, "hanging up", required=False)
        except (CallEnded, _Rejoined, AgentTimeout):
            pass  # the caller or the agent is gone already: the call is over either way
        await self.bus.end_call(self.call_id)

    @property
    def rapid_interruptions(self) -> bool:
        """More than ``rapid_barge_ins`` barge-ins within ``rapid_window`` seconds, this call."""
        return self.state.rapid

    # ---- prompts ----------------------------------------------------------

    async def _prompt_then(
        self, request: Command, prompt: Prompt | None, *, accept_dtmf: bool
    ) -> bool:
        """Send ``request`` and say ``prompt`` in barge-in order; True if the caller cut in."""
        if prompt is not None and not prompt.interruptible:
            self._pending.clear()  # VoiceXML: no type-ahead into a prompt without barge-in
            await self._say(prompt)
            await self._send(request)
            return False
        await self._send(request)
        if prompt is None:
            return False
        await self._drain()
        if self._has_answer(accept_dtmf):
            return True  # typed or said ahead: the prompt is skipped
        result = await self._say(prompt)
        return result.barged_in

    async def _say(self, prompt: Prompt) -> SpeakResult:
        request = Speak(request_id=self._new_id(), text=prompt.text, voice=prompt.voice,
                        language=prompt.language, interruptible=prompt.interruptible)
        limit = self.policy.speak_timeout + len(prompt.text) * self.policy.seconds_per_character
        return await self._await_output(request, prompt.interruptible, limit)

    async def _await_output(self, request: Speak | Play, interruptible: bool,
                            limit: float) -> SpeakResult:
        rid = request.request_id
        self._deaf = not interruptible
        try:
            await self._send(request)
            deadline = self.clock.monotonic() + limit
            while True:
                event = await self._next(deadline)
                if event is None:
                    await self._stop(rid)
                    what = request.text if isinstance(request, Speak) else request.audio
                    raise AgentTimeout(
                        f"the voice agent did not finish saying \"{_short(what)}\" within "
                        f"{limit:.0f} seconds"
                    )
                if isinstance(event, TtsComplete) and event.request_id == rid:
                    self._active.discard(rid)
                    return SpeakResult()
                if isinstance(event, TtsInterrupted) and event.request_id == rid:
                    self._active.discard(rid)
                    result = SpeakResult(interrupted=True, by=event.by, digit=event.digit)
                    if result.barged_in:
                        self._note_barge_in(event.by)
                    return result
        finally:
            self._deaf = False

    # ---- waiting for the caller -----------------------------------------

    async def _await_answer(
        self, rid: str, barged: bool, no_input_timeout: float, max_duration: float,
        accept_dtmf: bool,
    ) -> ListenResult:
        silence = _Silence(self)
        no_input_at = silence.started + no_input_timeout
        speaking_since: float | None = None
        partial: SpeechPartial | None = None
        while True:
            event = self._take_input(speech=True, dtmf=accept_dtmf)
            if isinstance(event, Dtmf):
                await self._stop(rid)
                return ListenResult("dtmf", digits=event.digit, barged_in=barged)
            if isinstance(event, SpeechComplete):
                if event.request_id == rid:
                    self._active.discard(rid)  # the agent ended that listen itself
                else:
                    await self._stop(rid)  # answered by words said earlier: close ours
                self._speech_barge_in = False
                return ListenResult("speech", event.transcript, event.confidence,
                                    barged_in=barged)
            if isinstance(event, SpeechPartial):
                partial = event
            if event is not None:
                if speaking_since is None:
                    speaking_since = self.clock.monotonic()
                continue
            if speaking_since is not None:
                # The agent cuts the answer at max_duration; this is the backstop.
                if await self._next(speaking_since + max_duration + self.policy.grace) is None:
                    await self._stop(rid)
                    heard = partial.transcript if partial else ""
                    return ListenResult("speech", heard, partial.confidence if partial else None,
                                        barged_in=barged, truncated=True)
                continue
            if not await self._wait_or_silence(silence, no_input_at, rid):
                return ListenResult("no_input", barged_in=barged)

    async def _await_digits(
        self, rid: str, barged: bool, num_digits: int | None, finish_on_key: str,
        timeout: float, inter_digit_timeout: float,
    ) -> DtmfResult:
        silence = _Silence(self)
        no_input_at = silence.started + timeout
        digits = ""
        last_key_at = 0.0
        while True:
            event = self._take_input(speech=False, dtmf=True)
            if isinstance(event, Dtmf):
                if finish_on_key and event.digit == finish_on_key:
                    await self._stop(rid)
                    return DtmfResult("digits", digits, "finish_key", barged)
                digits += event.digit
                if num_digits is not None and len(digits) >= num_digits:
                    await self._stop(rid)
                    return DtmfResult("digits", digits, "num_digits", barged)
                last_key_at = self.clock.monotonic()
                continue
            if digits:
                if await self._next(last_key_at + inter_digit_timeout) is None:
                    await self._stop(rid)
                    return DtmfResult("digits", digits, "timeout", barged)
                continue
            if not await self._wait_or_silence(silence, no_input_at, rid):
                return DtmfResult("no_input", barged_in=barged)

    async def _await_recording(
        self, rid: str, max_duration: float, finish_on_key: str, no_input_timeout: float
    ) -> RecordResult:
        silence = _Silence(self)
        no_input_at = silence.started + no_input_timeout
        heard_at: float | None = None
        finish_by: float | None = None  # set once we asked the agent to finish
        while True:
            event = self._take_input(speech=True, dtmf=True)
            if isinstance(event, Dtmf) and finish_on_key and event.digit == finish_on_key:
                if finish_by is None:
                    await self._send(Stop(request_id=self._new_id(), target=rid))
                    finish_by = self.clock.monotonic() + self.policy.grace
                continue
            if isinstance(event, (SpeechStarted, SpeechPartial, SpeechComplete)):
                heard_at = heard_at or self.clock.monotonic()
                continue
            if event is not None:
                continue
            if heard_at is None and finish_by is None:
                if not await self._wait_or_silence(silence, no_input_at, rid):
                    return RecordResult("no_input")
                continue
            if finish_by is None:
                assert heard_at is not None
                deadline = heard_at + max_duration + self.policy.grace
            else:
                deadline = finish_by
            reply = await self._next(deadline)
            if isinstance(reply, RecordComplete) and reply.request_id == rid:
                self._active.discard(rid)
                if heard_at is None and not reply.transcript and reply.duration <= 0:
                    return RecordResult("no_input")
                return RecordResult("recorded", reply.url, reply.transcript, reply.duration)
            if reply is None:
                if finish_by is not None:
                    raise AgentTimeout("the voice agent did not finish the recording in time")
                await self._send(Stop(request_id=self._new_id(), target=rid))
                finish_by = self.clock.monotonic() + self.policy.grace

    async def _wait_or_silence(self, silence: _Silence, no_input_at: float, rid: str) -> bool:
        """Wait for an event until no input; False when the caller gave none in time.

        Along the way applies the call-wide silence rule: past silence_check_after
        of silence, say "Are you still there?" (still listening) and, past
        silence_hangup_after more, hang up (raises CallEnded).
        """
        silent_until = silence.deadline()
        deadline = no_input_at if not silence.no_input_suppressed else None
        if silent_until is not None:
            deadline = silent_until if deadline is None else min(deadline, silent_until)
        assert deadline is not None  # suppressed only when the silence rule is on
        if await self._next(deadline) is not None:
            return True
        if silent_until is None or self.clock.monotonic() < silent_until:
            silence.account()
            await self._stop(rid)
            return False
        silence.account()
        if not self.state.silence_checked:
            # The listen stays open: an answer to "are you still there?" answers the question.
            result = await self._say(Prompt(self.policy.silence_message, interruptible=True))
            self.state.silence = self.policy.silence_check_after
            self.state.silence_checked = True
            silence.started = self.clock.monotonic()
            silence.no_input_suppressed = True
            if result.barged_in:
                return True
            return True  # go round: the loop waits again, now for the hang-up deadline
        await self._stop(rid)
        seconds = self.policy.silence_check_after + self.policy.silence_hangup_after
        await self.hangup("the caller was silent")
        raise CallEnded(COMPLETED, f"the caller said nothing for {seconds:g} seconds")

    async def _drain(self) -> None:
        """Take in the events already on the bus (early input), without waiting."""
        while (entry := await self._cursor.next(0)) is not None:
            await self._route(entry[1])

    def _has_answer(self, accept_dtmf: bool) -> bool:
        return any(
            isinstance(event, (SpeechStarted, SpeechPartial, SpeechComplete))
            or (accept_dtmf and isinstance(event, Dtmf))
            for event in self._pending
        )

    def _take_input(self, *, speech: bool, dtmf: bool) -> CallerInput | None:
        """The first pending input of the kinds wanted; others stay queued (type-ahead)."""
        for index, event in enumerate(self._pending):
            wanted = dtmf if isinstance(event, Dtmf) else speech
            if wanted:
                del self._pending[index]
                self._caller_active()
                return event
        return None

    # ---- events -----------------------------------------------------------

    async def _next(self, deadline: float | None) -> Event | None:
        """The next event that matters, or None once ``deadline`` (flow time) has passed.

        Caller input is queued in ``_pending`` (and returned, to wake the waiter).
        """
        while True:
            if deadline is None:
                wait = 1.0
            else:
                left = deadline - self.clock.monotonic()
                if left <= 0:
                    return None
                wait = self.clock.real(left)
            entry = await self._cursor.next(wait)
            if entry is None:
                continue
            event = await self._route(entry[1])
            if event is not None:
                return event

    async def _route(self, event: Event) -> Event | None:
        if isinstance(event, CallerLeft):
            raise CallEnded(USER_HANGUP, "the caller hung up")
        if isinstance(event, AgentLeft):
            await self._await_rejoin()
        if isinstance(event, ErrorEvent):
            if event.request_id in self._active:
                self._active.discard(event.request_id)
                raise AgentError(event.message or f"the voice agent reported '{event.code}'",
                                 event.code)
            return None  # about a request that is no longer ours to care about
        if isinstance(event, CALLER_INPUT):
            if not self._accept(event):  # type: ignore[arg-type]
                return None
            self._pending.append(event)  # type: ignore[arg-type]
        return event

    def _accept(self, event: CallerInput) -> bool:
        rid = event.request_id
        if self._deaf:
            return False
        if isinstance(event, Dtmf):
            return True  # keys are never late: what is not used now is typed ahead
        if rid in self._stopped:
            return False
        if rid and rid in self._own:
            return True
        if self._keep_speech:
            # The rest of an utterance that cut into the previous node's message.
            if isinstance(event, SpeechComplete):
                self._keep_speech = False
            return True
        return False

    async def _await_reply(
        self, rid: str, kind: type[Event], limit: float, what: str, *, required: bool = True
    ) -> None:
        deadline = self.clock.monotonic() + limit
        while True:
            event = await self._next(deadline)
            if event is None:
                self._active.discard(rid)
                if not required:
                    return
                raise AgentTimeout(f"the voice agent did not confirm {what} within "
                                   f"{limit:.0f} seconds")
            if isinstance(event, kind) and event.request_id == rid:
                self._active.discard(rid)
                return

    async def _await_rejoin(self) -> None:
        """The agent left: wait for another; then every request must be sent again."""
        deadline = self.clock.monotonic() + self.policy.agent_rejoin_timeout
        while True:
            left = deadline - self.clock.monotonic()
            entry = await self._cursor.next(self.clock.real(left)) if left > 0 else None
            if entry is None:
                raise AgentTimeout(
                    "the voice agent left the call and no other agent joined within "
                    f"{self.policy.agent_rejoin_timeout:g} seconds"
                )
            if isinstance(entry[1], CallerLeft):
                raise CallEnded(USER_HANGUP, "the caller hung up")
            if isinstance(entry[1], AgentJoined):
                self._stopped |= self._active  # whatever the old agent still sends is late
                self._active.clear()
                raise _Rejoined()

    # ---- requests ---------------------------------------------------------

    def _new_id(self) -> str:
        return f"{self._prefix}-{next(self._numbers)}"

    async def _send(self, command: Command) -> None:
        self._own.add(command.request_id)
        if not isinstance(command, Stop):
            self._active.add(command.request_id)
        await self.bus.send_command(self.call_id, command)

    async def _stop(self, rid: str) -> None:
        """Stop ``rid`` if it is still outstanding; its late input is dropped."""
        self._stopped.add(rid)
        if rid in self._active:
            self._active.discard(rid)
            await self.bus.send_command(self.call_id, Stop(request_id=self._new_id(), target=rid))

    async def _stop_all(self) -> None:
        for rid in sorted(self._active):
            await self._stop(rid)

    async def _restartable(self, operation: Callable[[], Awaitable[_T]]) -> _T:
        """Run one operation: stop its requests if cancelled; start again if the agent was replaced."""
        for attempt in range(MAX_RESTARTS + 1):
            try:
                return await operation()
            except _Rejoined:
                if attempt == MAX_RESTARTS:
                    raise AgentTimeout("the voice agent kept leaving the call") from None
            except asyncio.CancelledError:
                await _shielded(self._stop_all())
                raise
        raise AssertionError("unreachable")

    # ---- call-wide rules --------------------------------------------------

    def _caller_active(self) -> None:
        self.state.silence = 0.0
        self.state.silence_checked = False

    def _note_barge_in(self, by: str) -> None:
        self._caller_active()
        if by == "speech":
            self._speech_barge_in = True
        now = self.clock.time()
        window = self.policy.rapid_window
        recent = [at for at in self.state.barge_ins if now - at <= window] + [now]
        self.state.barge_ins = recent[-(self.policy.rapid_barge_ins + 1):]
        if len(recent) > self.policy.rapid_barge_ins:
            self.state.rapid = True


async def _shielded(work: Awaitable[None]) -> None:
    """Finish ``work`` even if the task is being cancelled (a stop, saving state)."""
    task = asyncio.ensure_future(work)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
