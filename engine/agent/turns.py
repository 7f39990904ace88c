"""End of the caller's turn from what the flow expects to hear, not only from silence.

A listen or menu node says in advance what callers will say. So once the
words heard so far already make one of its expected phrases, whole and
confidently (the grammar pass of engine.agent.sphinx), the turn ends after a
short silence (``short_silence``, 0.2 s) instead of the node's
``end_silence_ms``; a phrase that is the start of a longer expected phrase
("balance" beside "balance transfer") is not complete, and words that make
no phrase yet ("my ..." of "my balance") are not either: those wait for the
whole silence, so a caller who pauses mid-phrase is not cut off. Free speech
keeps the silence rule, unless a learned end-of-turn model (``TurnModel``,
engine.agent.smart_turn) says the caller has finished: as pipecat uses Smart
Turn, the model hears the turn once its silence is ``model_silence`` (0.2 s)
long, that silence included, and a probability of at least
``model_threshold`` (0.5) ends the turn then; below it, the whole silence
still ends it, and more speech asks the model again after its next silence.

:class:`ExpectingSTT` is that rule as a streaming livekit-agents STT wrapped
around a recogniser that takes one utterance at a time (pocketsphinx), in
place of livekit's ``stt.StreamAdapter``:

- the session's VAD (Silero) ends its own speech segments after
  ``short_silence`` (so the session stops treating the caller as speaking,
  and an answer said early is not cut by the caller's own silence); this
  class joins the segments of one answer and counts its silence itself;
- once the silence reaches ``check_after`` it recognises what it has against
  the grammar, in the background (the recogniser's time overlaps the
  silence); if that is a whole expected phrase with at least
  ``min_confidence``, END_OF_SPEECH and the final transcript go out as soon
  as the silence is ``short_silence`` long;
- for free speech with a turn model, the model is asked once the silence is
  ``model_silence`` long (and the speech recognised from ``check_after`` on,
  beside it, so the transcript is ready if the model ends the turn);
- otherwise the answer ends after the whole silence, as before, and its
  recognition is started ahead (when the silence is ``end_silence`` minus
  the recogniser's usual time), so the transcript is ready when the silence
  is, for free speech too. Recognising ahead starts no earlier than
  ``sphinx.PAD_SECONDS`` of silence, where the recogniser trims the audio
  anyway: the transcript is the one the whole utterance would give.

More speech before the end starts the count again and throws away what was
recognised (it described an answer that was not over).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from livekit import rtc
from livekit.agents import stt, utils
from livekit.agents import vad as agents_vad
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, APIConnectOptions, NotGivenOr

from engine.agent.grammar import phrase_words

log = logging.getLogger(__name__)
RECOGNISE_AHEAD_FLOOR = 0.35  # the recogniser keeps 0.3 s of trailing silence (sphinx)
MAX_UTTERANCE_SECONDS = 60.0


class TurnModel(Protocol):
    """A learned end-of-turn detector: 16 kHz mono 16-bit PCM of the turn so far →
    the probability that the speaker has finished. Blocking (run in a thread)."""

    def finished(self, pcm16k: bytes) -> float: ...


@dataclass(frozen=True)
class EndOfTurn:
    """How the end of a turn is decided (see the module docstring).

    ``enabled`` False keeps the plain rule (the whole ``end_silence_ms`` of VAD
    silence, then recognition), for comparison. ``model`` is consulted for
    speech when the node expects no phrases (free speech): once the silence is
    ``model_silence`` long it hears the turn, and a probability of at least
    ``model_threshold`` ends it.
    """

    enabled: bool = True
    short_silence: float = 0.2
    check_after: float = 0.03
    min_confidence: float = 0.6
    model: TurnModel | None = None
    model_threshold: float = 0.5
    model_silence: float = 0.2

    def whole_answer(self, phrase: str | None, confidence: float | None, expected: Iterable[str]) -> bool:
        """Whether a recognised ``phrase`` ends the turn early: a whole expected phrase
        (:func:`complete_phrase`), recognised with at least ``min_confidence``."""
        return (confidence or 0.0) >= self.min_confidence and complete_phrase(phrase, expected)


def complete_phrase(phrase: str | None, expected: Iterable[str]) -> bool:
    """Whether ``phrase`` (a recognised expected phrase) is a whole answer: not the
    first words of a longer expected phrase."""
    if not phrase:
        return False
    words = phrase_words(phrase)
    if not words:
        return False
    for other in expected:
        longer = phrase_words(other)
        if len(longer) > len(words) and longer[: len(words)] == words:
            return False
    return True


def session_stt(engine: stt.STT, vad: agents_vad.VAD, policy: EndOfTurn) -> stt.STT:
    """The STT a session should be given: Deepgram wrapped in
    engine.agent.cloud_turns.DeepgramTurns (each listen's options, and the early
    end from its results; the policy off keeps the options, not the early end);
    another streaming engine as is (it ends turns itself); ``engine`` as is when
    the policy is off (livekit wraps it); else an :class:`ExpectingSTT` around it."""
    from engine.agent import cloud_turns

    if cloud_turns.is_deepgram(engine):
        return cloud_turns.DeepgramTurns(engine, vad, policy)
    if not policy.enabled or engine.capabilities.streaming:
        return engine
    return ExpectingSTT(engine, vad, policy)


@dataclass(frozen=True)
class ModelCheck:
    """One question to the turn model: the silence when it was asked (seconds), how
    long the answer took (seconds, wall time off the event loop) and the answer."""

    silence: float
    seconds: float
    probability: float


def turn_rule(heard_by: stt.STT) -> Any:
    """What a CallVoice keeps as its ``turns``: the wrapper :func:`session_stt` made, if any."""
    from engine.agent import cloud_turns

    return heard_by if isinstance(heard_by, (ExpectingSTT, cloud_turns.DeepgramTurns)) else None


@dataclass
class TurnStats:
    """What the turns of one session were like (tests, bench)."""

    early_phrase: int = 0  # ended after the short silence: a whole expected phrase
    early_model: int = 0  # ended by the turn model
    full_silence: int = 0  # ended after the whole silence
    ahead_used: int = 0  # the transcript recognised ahead was the one used
    model_checks: list[ModelCheck] = field(default_factory=list)


class ExpectingSTT(stt.STT):
    """A one-utterance-at-a-time recogniser made streaming, with the early end of turn."""

    def __init__(self, engine: stt.STT, vad: agents_vad.VAD, policy: EndOfTurn) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=True, interim_results=False))
        self.engine = engine
        self.vad = vad
        self.policy = policy
        self.stats = TurnStats()
        self._end_silence = float(getattr(vad, "min_silence_duration", None) or 0.55)
        self._recognise_time = 0.15  # moving estimate of one recognition, seconds
        self._set_vad_silence(policy.short_silence)
        engine.on("metrics_collected", self._forward_metrics)

    @property
    def model(self) -> str:
        return self.engine.model

    @property
    def provider(self) -> str:
        return self.engine.provider

    @property
    def end_silence(self) -> float:
        return self._end_silence

    def set_end_silence(self, seconds: float) -> None:
        """The silence that ends an answer from now on (a listen's end_silence_ms,
        a recording's longer one)."""
        self._end_silence = max(float(seconds), self.policy.short_silence)

    def expected_phrases(self) -> tuple[str, ...]:
        return tuple(getattr(self.engine, "expected_phrases", ()) or ())

    def prewarm(self) -> None:
        self.engine.prewarm()

    async def _recognize_impl(
        self,
        buffer: utils.AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions,
    ) -> stt.SpeechEvent:
        return await self.engine.recognize(buffer=buffer, language=language, conn_options=conn_options)

    def stream(
        self,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> stt.RecognizeStream:
        return _ExpectingStream(self, language=language, conn_options=conn_options)

    async def recognise(self, pcm: bytes, rate: int, language: NotGivenOr[str]) -> stt.SpeechEvent:
        """One recognition of ``pcm``, timed (the estimate decides when to start ahead)."""
        frame = rtc.AudioFrame(pcm, rate, 1, len(pcm) // 2)
        began = time.perf_counter()
        event = await self.engine.recognize(buffer=frame, language=language)
        took = time.perf_counter() - began
        self._recognise_time = 0.7 * self._recognise_time + 0.3 * took
        return event

    @property
    def recognise_time(self) -> float:
        return self._recognise_time

    def _set_vad_silence(self, seconds: float) -> None:
        update = getattr(self.vad, "update_options", None)
        if update is not None:
            update(min_silence_duration=seconds)

    def _forward_metrics(self, *args: Any, **kwargs: Any) -> None:
        self.emit("metrics_collected", *args, **kwargs)

    async def aclose(self) -> None:
        self.engine.off("metrics_collected", self._forward_metrics)


@dataclass
class _Attempt:
    """A recognition (or model check) started during one stretch of silence."""

    task: asyncio.Task[Any]
    speech_mark: int
    silence: float  # how long the silence was when it started
    length: int  # bytes of audio it covers


class _Utterance:
    def __init__(self, rate: int, pcm: bytes) -> None:
        self.rate = rate
        self.pcm = bytearray(pcm)
        self.silence = 0.0
        self.speaking = True
        self.speech_mark = 0
        self.grammar: _Attempt | None = None
        self.ahead: _Attempt | None = None
        self.turn_model: _Attempt | None = None
        self.early_text: _Attempt | None = None  # recognised beside the model's check

    def add(self, frame: rtc.AudioFrame) -> float:
        data = bytes(frame.data)
        if len(self.pcm) < MAX_UTTERANCE_SECONDS * self.rate * 2:
            self.pcm.extend(data)
        return frame.samples_per_channel / max(frame.sample_rate, 1)

    def fresh(self, attempt: _Attempt | None) -> bool:
        """``attempt`` covers everything said so far (no speech since it started)."""
        return attempt is not None and attempt.speech_mark == self.speech_mark

    def drop_attempts(self) -> None:
        self.grammar = self.ahead = self.turn_model = self.early_text = None


_WAKE = object()  # a background attempt finished: decide again


class _ExpectingStream(stt.RecognizeStream):
    def __init__(
        self, owner: ExpectingSTT, *, language: NotGivenOr[str], conn_options: APIConnectOptions
    ) -> None:
        super().__init__(stt=owner, conn_options=conn_options)
        self._owner = owner
        self._language = language
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._utterance: _Utterance | None = None
        opts = getattr(owner.vad, "_opts", None)
        self._activation = float(getattr(opts, "activation_threshold", 0.5))
        self._deactivation = float(getattr(opts, "deactivation_threshold", 0.35))

    async def _run(self) -> None:
        vad_stream = self._owner.vad.stream()

        async def forward() -> None:
            async for item in self._input_ch:
                if isinstance(item, self._FlushSentinel):
                    vad_stream.flush()
                else:
                    vad_stream.push_frame(item)
            vad_stream.end_input()

        async def pump() -> None:
            async for event in vad_stream:
                self._queue.put_nowait(event)
            self._queue.put_nowait(None)

        tasks = [asyncio.create_task(forward()), asyncio.create_task(pump())]
        try:
            while (item := await self._queue.get()) is not None:
                if item is not _WAKE:
                    self._on_vad(item)
                await self._decide()
            if self._utterance is not None:
                await self._finish(self._utterance, None, "full_silence")
        finally:
            await utils.aio.cancel_and_wait(*tasks)
            self._cancel_attempts(self._utterance)
            await vad_stream.aclose()

    # ---- the caller's audio, window by window -----------------------------------

    def _on_vad(self, event: agents_vad.VADEvent) -> None:
        utterance = self._utterance
        if event.type == agents_vad.VADEventType.START_OF_SPEECH:
            if utterance is None and event.frames:
                first = event.frames[0]
                pcm = b"".join(bytes(frame.data) for frame in event.frames)
                self._utterance = _Utterance(first.sample_rate, pcm)
                self._send(stt.SpeechEvent(type=stt.SpeechEventType.START_OF_SPEECH))
            return
        if event.type != agents_vad.VADEventType.INFERENCE_DONE or utterance is None:
            return
        seconds = sum(utterance.add(frame) for frame in event.frames)
        threshold = self._deactivation if utterance.speaking else self._activation
        if event.probability >= threshold:
            if not utterance.speaking or utterance.silence > 0:
                utterance.speech_mark += 1  # more speech: what was recognised is stale
            utterance.speaking = True
            utterance.silence = 0.0
        else:
            utterance.speaking = False
            utterance.silence += seconds

    # ---- deciding ------------------------------------------------------------------

    async def _decide(self) -> None:
        utterance = self._utterance
        if utterance is None or utterance.speaking:
            return
        policy = self._owner.policy
        silence = utterance.silence
        phrases = self._owner.expected_phrases()
        if phrases and silence >= policy.check_after and not utterance.fresh(utterance.grammar):
            utterance.grammar = self._attempt(utterance, self._recognise(utterance))
        model_wanted = policy.model is not None and not phrases
        if model_wanted and silence >= policy.check_after and not utterance.fresh(utterance.early_text):
            utterance.early_text = self._attempt(utterance, self._recognise(utterance))
        if model_wanted and silence >= policy.model_silence and not utterance.fresh(utterance.turn_model):
            utterance.turn_model = self._attempt(utterance, self._model_check(utterance))
        ahead_at = max(self._owner.end_silence - self._owner.recognise_time - 0.05, RECOGNISE_AHEAD_FLOOR)
        if silence >= ahead_at and not utterance.fresh(utterance.ahead):
            utterance.ahead = self._attempt(utterance, self._recognise(utterance))

        grammar = self._result(utterance, utterance.grammar)
        if grammar is not None and silence >= policy.short_silence and self._whole_phrase(grammar, phrases):
            await self._finish(utterance, grammar, "early_phrase")
            return
        finished = self._result(utterance, utterance.turn_model)
        if isinstance(finished, float) and finished >= policy.model_threshold:
            await self._finish(utterance, None, "early_model")
            return
        if silence >= self._owner.end_silence:
            await self._finish(utterance, None, "full_silence")

    def _whole_phrase(self, event: stt.SpeechEvent, phrases: tuple[str, ...]) -> bool:
        if not event.alternatives:
            return False
        best = event.alternatives[0]
        phrase = (best.metadata or {}).get("phrase") if isinstance(best.metadata, dict) else None
        return self._owner.policy.whole_answer(phrase, best.confidence, phrases)

    def _attempt(self, utterance: _Utterance, work: Any) -> _Attempt:
        task = asyncio.ensure_future(work)
        task.add_done_callback(lambda _t: self._queue.put_nowait(_WAKE))
        return _Attempt(task, utterance.speech_mark, utterance.silence, len(utterance.pcm))

    @staticmethod
    def _result(utterance: _Utterance, attempt: _Attempt | None) -> Any:
        if attempt is None or not utterance.fresh(attempt) or not attempt.task.done():
            return None
        if attempt.task.cancelled() or attempt.task.exception() is not None:
            return None
        return attempt.task.result()

    async def _recognise(self, utterance: _Utterance) -> stt.SpeechEvent:
        return await self._owner.recognise(bytes(utterance.pcm), utterance.rate, self._language)

    async def _model_check(self, utterance: _Utterance) -> float:
        model = self._owner.policy.model
        assert model is not None
        pcm = bytes(utterance.pcm)
        silence = utterance.silence

        def ask() -> float:
            audio = pcm
            if utterance.rate != 16000:
                from engine.agent import wav

                audio = wav.resample(pcm, utterance.rate, 16000)
            return model.finished(audio)

        began = time.perf_counter()
        probability = await asyncio.to_thread(ask)
        took = time.perf_counter() - began
        self._owner.stats.model_checks.append(ModelCheck(silence, took, probability))
        return probability

    async def _finish(self, utterance: _Utterance, heard: stt.SpeechEvent | None, why: str) -> None:
        """The answer is over: END_OF_SPEECH now, then its transcript."""
        self._utterance = None
        stats = self._owner.stats
        setattr(stats, why, getattr(stats, why) + 1)
        speech_end = time.time() - utterance.silence
        self._send(stt.SpeechEvent(type=stt.SpeechEventType.END_OF_SPEECH, speech_end_time=speech_end))
        if heard is None:
            ahead = utterance.ahead
            if why == "early_model" and utterance.fresh(utterance.early_text):
                ahead = utterance.early_text
            if (
                ahead is not None
                and utterance.fresh(ahead)
                and (ahead.silence >= RECOGNISE_AHEAD_FLOOR or ahead is utterance.early_text)
            ):
                stats.ahead_used += 1
                try:
                    heard = await ahead.task
                except Exception as error:  # noqa: BLE001 - recognised again below
                    log.warning("recognising ahead failed: %s", error)
            if heard is None:
                self._cancel_attempts(utterance)
                try:
                    heard = await self._recognise(utterance)
                except Exception as error:  # noqa: BLE001 - one lost answer, not the call
                    log.warning("speech recognition failed: %s", error)
                    return
        self._cancel_attempts(utterance)
        if not heard.alternatives or not heard.alternatives[0].text:
            return  # nothing recognisable: the listener's final_wait decides
        self._send(
            stt.SpeechEvent(
                type=stt.SpeechEventType.FINAL_TRANSCRIPT,
                alternatives=[heard.alternatives[0]],
                speech_end_time=speech_end,
            )
        )

    @staticmethod
    def _cancel_attempts(utterance: _Utterance | None) -> None:
        if utterance is None:
            return
        for attempt in (utterance.grammar, utterance.ahead, utterance.turn_model, utterance.early_text):
            if attempt is not None and not attempt.task.done():
                attempt.task.cancel()
        utterance.drop_attempts()

    def _send(self, event: stt.SpeechEvent) -> None:
        self._event_ch.send_nowait(event)
