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

from engine.voice.channel_base import AgentRejoined, ChannelBase
from engine.voice.errors import COMPLETED, AgentTimeout, CallEnded
from engine.voice.messages import (
    CollectDtmf,
    Command,
    Dtmf,
    Event,
    Hangup,
    HangupComplete,
    Listen,
    Play,
    Record,
    RecordComplete,
    Speak,
    SpeechComplete,
    SpeechPartial,
    SpeechStarted,
    Stop,
    Transfer,
    TransferComplete,
    TtsComplete,
    TtsInterrupted,
)
from engine.voice.results import (
    ChannelPolicy,
    DtmfResult,
    ListenResult,
    Prompt,
    RecordResult,
    SpeakResult,
)

__all__ = [
    "ChannelPolicy",
    "DtmfResult",
    "ListenResult",
    "Prompt",
    "RecordResult",
    "SpeakResult",
    "VoiceChannel",
]


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

    def account(self, deadline: float) -> None:
        """The wait that ended at ``deadline`` had no input: add it to the call's silence.

        Counted to the deadline, not to when this task ran again: a busy worker
        must not make a caller sound more silent than they were.
        """
        now = self.channel.clock.monotonic()
        self.channel.state.silence += max(min(now, deadline) - self.started, 0.0)
        self.started = now


class VoiceChannel(ChannelBase):
    """One node's conversation with the agent side of a call (see the module docstring)."""

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
            return await self._await_output(request, interruptible, self.policy.speak_timeout)

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
                request_id=self._new_id(),
                end_silence_ms=end_silence_ms,
                max_duration=max_duration,
                no_input_timeout=no_input_timeout,
                expected_phrases=tuple(expected_phrases),
                language=language,
                dtmf=dtmf,
                upcoming=self.upcoming,
            )

        async def once() -> ListenResult:
            request = command()
            barged = await self._prompt_then(request, prompt, accept_dtmf=dtmf)
            return await self._await_answer(request.request_id, barged, no_input_timeout, max_duration, dtmf)

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
                request_id=self._new_id(),
                num_digits=num_digits,
                finish_on_key=finish_on_key,
                timeout=timeout,
                inter_digit_timeout=inter_digit_timeout,
                upcoming=self.upcoming,
            )
            barged = await self._prompt_then(request, prompt, accept_dtmf=True)
            return await self._await_digits(
                request.request_id, barged, num_digits, finish_on_key, timeout, inter_digit_timeout
            )

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
            request = Record(
                request_id=self._new_id(),
                max_duration=max_duration,
                beep=beep,
                finish_on_key=finish_on_key,
                upcoming=self.upcoming,
            )
            await self._send(request)
            return await self._await_recording(
                request.request_id, max_duration, finish_on_key, no_input_timeout
            )

        return await self._restartable(once)

    async def transfer(self, destination: str) -> None:
        """Transfer the call; raises AgentError if the agent reports that it failed."""

        async def once() -> None:
            request = Transfer(request_id=self._new_id(), destination=destination)
            await self._send(request)
            await self._await_reply(
                request.request_id,
                TransferComplete,
                self.policy.transfer_timeout,
                f"the transfer to {destination}",
            )

        await self._restartable(once)
        await self.bus.end_call(self.call_id)

    async def hangup(self, reason: str = "") -> None:
        """End the call. Does not fail if the call is already gone."""
        request = Hangup(request_id=self._new_id(), reason=reason)
        try:
            await self._send(request)
            await self._await_reply(
                request.request_id, HangupComplete, self.policy.hangup_timeout, "hanging up", required=False
            )
        except (CallEnded, AgentRejoined, AgentTimeout):
            pass  # the caller or the agent is gone already: the call is over either way
        await self.bus.end_call(self.call_id)

    @property
    def rapid_interruptions(self) -> bool:
        """More than ``rapid_barge_ins`` barge-ins within ``rapid_window`` seconds, this call."""
        return self.state.rapid

    # ---- prompts ----------------------------------------------------------

    async def _prompt_then(self, request: Command, prompt: Prompt | None, *, accept_dtmf: bool) -> bool:
        """Send ``request`` and say ``prompt`` in barge-in order; True if the caller cut in."""
        if prompt is not None and not prompt.interruptible:
            self._pending.clear()  # VoiceXML: no type-ahead into a prompt without barge-in
            await self._say(prompt)
            await self._send(request)
            return False
        await self._drain()
        if isinstance(request, Listen) and self._has_answer(accept_dtmf):
            # Answered ahead (words said over the last message, a key typed ahead):
            # no prompt, and no listen for the agent to answer again.
            return prompt is not None
        await self._send(request)
        if prompt is None:
            return False
        if self._has_answer(accept_dtmf):
            return True  # typed or said ahead: the prompt is skipped
        result = await self._say(prompt)
        return result.barged_in

    async def _say(self, prompt: Prompt) -> SpeakResult:
        request = Speak(
            request_id=self._new_id(),
            text=prompt.text,
            voice=prompt.voice,
            language=prompt.language,
            interruptible=prompt.interruptible,
        )
        limit = self.policy.speak_timeout + len(prompt.text) * self.policy.seconds_per_character
        return await self._await_output(request, prompt.interruptible, limit)

    async def _await_output(self, request: Speak | Play, interruptible: bool, limit: float) -> SpeakResult:
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
                        f'the voice agent did not finish saying "{_short(what)}" within {limit:.0f} seconds'
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
        self,
        rid: str,
        barged: bool,
        no_input_timeout: float,
        max_duration: float,
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
                return ListenResult("speech", event.transcript, event.confidence, barged_in=barged)
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
                    return ListenResult(
                        "speech",
                        heard,
                        partial.confidence if partial else None,
                        barged_in=barged,
                        truncated=True,
                    )
                continue
            if not await self._wait_or_silence(silence, no_input_at, rid):
                return ListenResult("no_input", barged_in=barged)

    async def _await_digits(
        self,
        rid: str,
        barged: bool,
        num_digits: int | None,
        finish_on_key: str,
        timeout: float,
        inter_digit_timeout: float,
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
        silence.account(deadline)
        if silent_until is None or deadline < silent_until:
            await self._stop(rid)
            return False
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
                raise AgentTimeout(f"the voice agent did not confirm {what} within {limit:.0f} seconds")
            if isinstance(event, kind) and event.request_id == rid:
                self._active.discard(rid)
                return


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
