"""End of the caller's turn from what the flow expects, with Deepgram deciding the silence.

engine.agent.turns does this for a recogniser that takes one utterance at a
time; a streaming cloud recogniser measures the silence itself (Deepgram's
``endpointing``: ``speech_final`` after that many ms of silence), so here the
listen node's expectations become Deepgram's live options
(engine.agent.cloud_options.deepgram_turn_options) and :class:`DeepgramTurns`
reads its results:

- a node with expected phrases asks Deepgram for the short silence
  (``short_silence``, 0.2 s) as its ``endpointing``. When ``speech_final``
  comes and the words of the turn so far (its finals, and the last interim if
  the final was empty) make one whole expected phrase (not the start of a
  longer one, engine.agent.turns.complete_phrase) with at least
  ``min_confidence``, the turn ends then. Otherwise it is held: it ends once
  the rest of the node's ``end_silence_ms`` passes with no more speech
  (Deepgram's ``SpeechStarted`` or new words start the count again), so a
  caller who pauses mid-phrase ("my ... balance") is not cut off;
- free speech (no phrases) asks for the whole ``end_silence_ms``, and
  ``speech_final`` ends the turn, as before;
- ``utterance_end_ms`` (at least 1 s) is the backstop when a noisy line never
  gives ``speech_final``; the plugin reports its UtteranceEnd the same way.

Deepgram takes its options when the WebSocket opens, so livekit's plugin
reconnects to change them (``update_options``: the socket closes, a new one
opens with the new query; audio waits in the stream's queue meanwhile, but
results still owed on the old socket are lost). So options change only
between turns: a change that comes while the caller is speaking waits for
the end of the turn, and nothing is sent when nothing changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from livekit.agents import stt, utils
from livekit.agents import vad as agents_vad
from livekit.agents.language import LanguageCode
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, APIConnectOptions, NotGivenOr

from engine.agent import cloud_options
from engine.agent.grammar import phrase_words
from engine.agent.turns import EndOfTurn

log = logging.getLogger(__name__)
DEEPGRAM_MODULE = "livekit.plugins.deepgram"
FILLER_WORDS = frozenset({"uh", "um", "er", "ah", "hmm", "mm", "uhm"})
STALE_TURN = 5.0  # seconds without a word from Deepgram after which an open turn no longer defers


def is_deepgram(engine: stt.STT) -> bool:
    return type(engine).__module__.startswith(DEEPGRAM_MODULE)


def matching_phrase(transcript: str, phrases: tuple[str, ...]) -> str | None:
    """The expected phrase ``transcript`` says, word for word (filler words aside), if any."""
    words = tuple(word for word in phrase_words(transcript) if word not in FILLER_WORDS)
    if not words:
        return None
    for phrase in phrases:
        if phrase_words(phrase) == words:
            return phrase
    return None


@dataclass
class CloudTurnStats:
    """What the turns were like (tests, bench)."""

    early_phrase: int = 0  # speech_final on a whole expected phrase, after the short silence
    full_silence: int = 0  # ended after the whole end_silence_ms
    held: int = 0  # speech_final on words that make no whole phrase: waited for the rest
    resumed: int = 0  # the caller spoke again while a turn was held
    option_changes: list[dict[str, Any]] = field(default_factory=list)  # applied, in order
    deferred: int = 0  # option changes that waited for the end of a turn
    connect_seconds: list[float] = field(default_factory=list)  # each (re)connection's handshake


class DeepgramTurns(stt.STT):
    """livekit-plugins-deepgram's STT with the listen node's options and the early end."""

    def __init__(
        self,
        engine: stt.STT,
        vad: agents_vad.VAD | None,
        policy: EndOfTurn,
        settings: cloud_options.DeepgramSettings | None = None,
    ) -> None:
        super().__init__(
            capabilities=stt.STTCapabilities(
                streaming=True,
                interim_results=True,
                aligned_transcript=engine.capabilities.aligned_transcript,
            )
        )
        self.engine = engine
        self.vad = vad
        self.policy = policy
        self.settings = settings or cloud_options.DeepgramSettings(model=str(engine.model))
        self.stats = CloudTurnStats()
        self._phrases: tuple[str, ...] = ()
        self._end_silence = 0.8
        self._applied: dict[str, Any] = _options_of(engine)
        self._pending: dict[str, Any] | None = None
        self._streams: list[_DeepgramTurnStream] = []
        if policy.enabled:
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

    @property
    def phrases(self) -> tuple[str, ...]:
        return self._phrases

    @property
    def endpointing(self) -> float:
        """The silence Deepgram is asked to end speech after, in seconds."""
        return float(self._options()["endpointing_ms"]) / 1000

    def set_end_silence(self, seconds: float) -> None:
        """The silence that ends an answer from now on (a recording's longer one)."""
        self.listen_for(self._phrases, seconds)

    def listen_for(self, phrases: tuple[str, ...] | list[str], end_silence: float) -> None:
        """What the next answer is expected to be, and the silence that ends it.
        Deepgram's options follow, between turns."""
        self._phrases = tuple(phrases)
        self._end_silence = max(float(end_silence), self.policy.short_silence)
        # The session's VAD says when the caller is speaking (barge-in, the listener's
        # grace timer). With the early end it lets go after the short silence, as with
        # engine.agent.turns, so a reply that comes early is not cut by the caller's own
        # silence being taken for speech; Deepgram decides the end of the answer.
        self._set_vad_silence(self.policy.short_silence if self.policy.enabled else self._end_silence)
        wanted = self._options()
        changes = {key: value for key, value in wanted.items() if self._applied.get(key) != value}
        if not changes:
            self._pending = None
            return
        if any(stream.busy for stream in self._streams):
            self._pending = wanted
            self.stats.deferred += 1
            return
        self._apply(wanted)

    def turn_over(self) -> None:
        """A turn ended: options that waited for it go now."""
        if self._pending is not None and not any(stream.busy for stream in self._streams):
            wanted, self._pending = self._pending, None
            self._apply(wanted)

    def _options(self) -> dict[str, Any]:
        short = int(round(self.policy.short_silence * 1000)) if self.policy.enabled else None
        return cloud_options.deepgram_turn_options(
            self.settings,
            self._phrases,
            int(round(self._end_silence * 1000)),
            short_silence_ms=short,
        )

    def _apply(self, wanted: dict[str, Any]) -> None:
        changes = {key: value for key, value in wanted.items() if self._applied.get(key) != value}
        if not changes:
            return
        self._applied.update(changes)
        self.stats.option_changes.append(changes)
        self.engine.update_options(**changes)  # type: ignore[attr-defined]

    def _set_vad_silence(self, seconds: float) -> None:
        update = getattr(self.vad, "update_options", None)
        if update is not None:
            update(min_silence_duration=seconds)

    def end_decision(self, words: str, confidence: float | None) -> str:
        """At Deepgram's end of speech: ``early_phrase`` (end now), ``full_silence``
        (end now: the whole silence has passed) or ``held`` (wait for the rest)."""
        if not self.policy.enabled or not self._phrases:
            return "full_silence"
        phrase = matching_phrase(words, self._phrases)
        if self.policy.whole_answer(phrase, confidence, self._phrases):
            return "early_phrase"
        if self.endpointing >= self._end_silence:
            return "full_silence"
        return "held"

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
        stream = _DeepgramTurnStream(self, language=language, conn_options=conn_options)
        self._streams.append(stream)
        return stream

    def _forget(self, stream: _DeepgramTurnStream) -> None:
        with contextlib.suppress(ValueError):
            self._streams.remove(stream)

    def _forward_metrics(self, *args: Any, **kwargs: Any) -> None:
        metrics = args[0] if args else None
        acquired = getattr(metrics, "acquire_time", 0.0) or 0.0
        if acquired > 0 and not getattr(metrics, "connection_reused", True):
            self.stats.connect_seconds.append(float(acquired))  # what a reconnect costs
        self.emit("metrics_collected", *args, **kwargs)

    async def aclose(self) -> None:
        self.engine.off("metrics_collected", self._forward_metrics)


class _DeepgramTurnStream(stt.RecognizeStream):
    def __init__(
        self, owner: DeepgramTurns, *, language: NotGivenOr[str], conn_options: APIConnectOptions
    ) -> None:
        super().__init__(stt=owner, conn_options=conn_options)
        self._owner = owner
        self._language = language
        self.in_turn = False
        self._finals: list[tuple[str, float | None]] = []
        self._interim: tuple[str, float | None] | None = None
        self._hold: asyncio.TimerHandle | None = None
        self._ended_on: str | None = None  # a turn ended on this interim: its final is not news
        self._last_news = time.monotonic()

    @property
    def busy(self) -> bool:
        """In the caller's turn (options must wait). A turn Deepgram has said nothing
        about for STALE_TURN seconds (its end lost) no longer holds them back."""
        return self.in_turn and time.monotonic() - self._last_news < STALE_TURN

    async def _run(self) -> None:
        inner = self._owner.engine.stream(language=self._language, conn_options=self._conn_options)

        async def forward() -> None:
            async for item in self._input_ch:
                if isinstance(item, self._FlushSentinel):
                    inner.flush()
                else:
                    inner.push_frame(item)
            inner.end_input()

        sender = asyncio.create_task(forward())
        try:
            async for event in inner:
                self._on_event(event)
        finally:
            self._cancel_hold()
            await utils.aio.cancel_and_wait(sender)
            await inner.aclose()
            self._owner._forget(self)

    def _on_event(self, event: stt.SpeechEvent) -> None:
        kind = event.type
        self._last_news = time.monotonic()
        if kind == stt.SpeechEventType.START_OF_SPEECH:
            self._ended_on = None
            self._speech()
            return
        if kind in (stt.SpeechEventType.INTERIM_TRANSCRIPT, stt.SpeechEventType.FINAL_TRANSCRIPT):
            best = event.alternatives[0] if event.alternatives else None
            if best is None or not best.text.strip():
                return
            if (
                kind == stt.SpeechEventType.FINAL_TRANSCRIPT
                and not self.in_turn
                and self._ended_on is not None
                and _same_words(best.text, self._ended_on)
            ):
                self._ended_on = None  # the final of the interim a turn already ended on
                return
            self._ended_on = None
            self._speech()
            if kind == stt.SpeechEventType.FINAL_TRANSCRIPT:
                self._finals.append((best.text, best.confidence))
                self._interim = None
            else:
                self._interim = (best.text, best.confidence)
            self._send(event)
            return
        if kind == stt.SpeechEventType.END_OF_SPEECH:
            self._deepgram_ended()
            return
        self._send(event)  # usage, metrics

    def _speech(self) -> None:
        """The caller is speaking: a turn begins, or a held one goes on."""
        if self._hold is not None:
            self._cancel_hold()
            self._owner.stats.resumed += 1
            return
        if not self.in_turn:
            self.in_turn = True
            self._finals, self._interim = [], None
            self._send(stt.SpeechEvent(type=stt.SpeechEventType.START_OF_SPEECH))

    def _deepgram_ended(self) -> None:
        if not self.in_turn or self._hold is not None:
            return
        words, confidence = self._heard()
        decision = self._owner.end_decision(words, confidence)
        if decision == "held":
            self._owner.stats.held += 1
            rest = max(self._owner.end_silence - self._owner.endpointing, 0.0)
            self._hold = asyncio.get_running_loop().call_later(rest, self._held_out)
            return
        self._end(decision)

    def _heard(self) -> tuple[str, float | None]:
        parts = [(text, conf) for text, conf in self._finals if text.strip()]
        if not parts and self._interim is not None:
            parts = [self._interim]
        values = [conf for _, conf in parts if conf is not None]
        confidence = min(values) if values else None
        return " ".join(text.strip() for text, _ in parts), confidence

    def _held_out(self) -> None:
        self._hold = None
        self._end("full_silence")

    def _end(self, why: str) -> None:
        stats = self._owner.stats
        setattr(stats, why, getattr(stats, why) + 1)
        if self._interim is not None and not self._finals:
            # Deepgram ended speech with nothing final: the interim is all there is.
            text, confidence = self._interim
            self._ended_on = text
            self._send(
                stt.SpeechEvent(
                    type=stt.SpeechEventType.FINAL_TRANSCRIPT,
                    alternatives=[
                        stt.SpeechData(
                            language=LanguageCode(self._language if isinstance(self._language, str) else ""),
                            text=text,
                            confidence=confidence or 0.0,
                        )
                    ],
                )
            )
        self.in_turn = False
        self._finals, self._interim = [], None
        self._send(stt.SpeechEvent(type=stt.SpeechEventType.END_OF_SPEECH))
        self._owner.turn_over()

    def _cancel_hold(self) -> None:
        if self._hold is not None:
            self._hold.cancel()
            self._hold = None

    def _send(self, event: stt.SpeechEvent) -> None:
        with contextlib.suppress(Exception):
            self._event_ch.send_nowait(event)


def _options_of(engine: stt.STT) -> dict[str, Any]:
    """The turn options the plugin was built with (so an unchanged one is not sent again)."""
    opts = getattr(engine, "_opts", None)
    if opts is None:
        return {}
    found = {
        key: getattr(opts, key)
        for key in ("endpointing_ms", "interim_results", "vad_events", "utterance_end_ms")
        if hasattr(opts, key)
    }
    if hasattr(opts, "keyterm"):
        found["keyterm"] = list(opts.keyterm)
    if hasattr(opts, "keywords"):
        found["keywords"] = list(opts.keywords)
    return found


def _same_words(one: str, other: str) -> bool:
    return phrase_words(one) == phrase_words(other)
