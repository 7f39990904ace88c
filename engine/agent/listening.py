"""The agent's ears: the caller's speech and keys become bus events.

What is being listened for is at most one input request at a time (a
``listen``, ``collect_dtmf`` or ``record``; a new one replaces the old). The
caller's speech is cut into utterances:

- an utterance begins when VAD hears speech (the session's user state turns
  to "speaking", the same signal that cuts an interruptible prompt) or the
  STT says so; ``speech:started`` goes out then, for the request it belongs to
  (the active input request, else the interruptible prompt being heard,
  else ""). One that begins over a prompt that may not be interrupted,
  with nothing listening, is ignored to its end (VoiceXML's bargein=false).
- interim transcripts become ``speech:partial``; final ones are gathered.
- it ends when the STT ends it (END_OF_SPEECH after the listen's
  ``end_silence_ms``, which is the VAD's silence, and its final transcript),
  or, if the STT never does, ``turn_grace`` seconds after VAD heard silence;
  or it is cut at the listen's ``max_duration``. Then ``speech:complete`` with
  the final transcripts joined and their mean confidence, for the active
  input request if there is one (the answer to it), else the request it
  began with. A recording takes the transcript into ``record:complete``.

The offline STT decides after the silence (its END_OF_SPEECH comes before its
final transcript, and none comes for audio with no words: ``final_wait``
bounds that); Deepgram decides as it goes (finals, then speech_final).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

from livekit import rtc
from livekit.agents import stt
from livekit.agents.language import LanguageCode

from engine.agent import clips
from engine.agent.cloud_turns import DeepgramTurns
from engine.agent.offline_stt import OfflineSTT
from engine.agent.prompts import CLIP_RATE, PromptPlayer
from engine.agent.recorder import Recording
from engine.agent.session import CallVoice
from engine.voice.messages import (
    CollectDtmf,
    Dtmf,
    Event,
    Listen,
    Record,
    RecordComplete,
    SpeechComplete,
    SpeechPartial,
    SpeechStarted,
)

Publish = Callable[[Event], None]
InputRequest: TypeAlias = Listen | CollectDtmf | Record
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ListeningOptions:
    """``final_wait``: how long after the STT's end of speech its final transcript may
    still come. ``turn_grace``: how long after VAD's end of speech an STT that never
    ended the utterance gets. ``record_end_silence``: the silence that ends a
    recording (longer than an answer's: people pause in a message)."""

    final_wait: float = 1.5
    turn_grace: float = 2.5
    record_end_silence: float = 2.0
    recordings_dir: Path = Path("recordings")


@dataclass
class Utterance:
    request_id: str  # the request it was attributed to when it began
    ignored: bool
    started_at: float = field(default_factory=time.monotonic)
    finals: list[tuple[str, float | None]] = field(default_factory=list)
    interim: str = ""
    interim_confidence: float | None = None
    stt_ended: bool = False
    answered: bool = False  # speech:complete (or record:complete) has gone out
    closed: bool = False  # no more events belong to it
    timer: asyncio.TimerHandle | None = None

    def text(self, with_interim: bool = False) -> str:
        parts = [text for text, _ in self.finals if text.strip()]
        if with_interim and self.interim.strip():
            parts.append(self.interim)
        return " ".join(part.strip() for part in parts)

    def confidence(self) -> float | None:
        values = [conf for _, conf in self.finals if conf is not None]
        if values:
            return round(sum(values) / len(values), 4)
        if not self.text(with_interim=True):
            return 0.0  # heard something, recognised nothing
        return self.interim_confidence


class CallerListener:
    def __init__(
        self,
        voice: CallVoice,
        prompts: PromptPlayer,
        publish: Publish,
        call_id: str,
        options: ListeningOptions = ListeningOptions(),
    ) -> None:
        self._voice = voice
        self._prompts = prompts
        self._publish = publish
        self._call_id = call_id
        self.options = options
        self._input: InputRequest | None = None
        self._utterance: Utterance | None = None
        self._recording: Recording | None = None
        self._input_timer: asyncio.TimerHandle | None = None
        self._answer_silence: float | None = None
        self._typed_ahead: str | None = None  # typed before anything asked: kept for the question
        voice.session.on("user_state_changed", self._on_user_state)
        voice.agent.speech_listeners.append(self._on_speech)
        voice.agent.audio_listeners.append(self._on_frame)

    def close(self) -> None:
        self._voice.session.off("user_state_changed", self._on_user_state)
        if self._on_speech in self._voice.agent.speech_listeners:
            self._voice.agent.speech_listeners.remove(self._on_speech)
        if self._on_frame in self._voice.agent.audio_listeners:
            self._voice.agent.audio_listeners.remove(self._on_frame)
        self._cancel_input_timer()
        if self._utterance is not None and self._utterance.timer is not None:
            self._utterance.timer.cancel()

    # ---- commands ------------------------------------------------------------

    def listen(self, command: Listen) -> None:
        self._replace_input(command)
        if self._typed_ahead is not None:
            # Typed before the question was asked: that is the answer to it.
            text, self._typed_ahead = self._typed_ahead, None
            self._later(0.0, lambda: self.typed(text))
        self._answer_silence = command.end_silence_ms / 1000
        self._expect(command.expected_phrases, command.end_silence_ms / 1000)
        utterance = self._utterance
        if utterance is not None and not utterance.closed and not utterance.ignored:
            # The caller is already talking: max_duration counts from when they began.
            self._start_input_timer(command.max_duration, since=utterance.started_at)

    def collect_dtmf(self, command: CollectDtmf) -> None:
        self._replace_input(command)

    async def record(self, command: Record) -> None:
        if command.beep:
            await self._prompts.play_now(clips.beep_pcm(CLIP_RATE))
        self._replace_input(command)
        self._recording = Recording(command.request_id, self._call_id)
        if isinstance(self._voice.turns, DeepgramTurns):
            self._voice.turns.listen_for((), self.options.record_end_silence)  # a message, not a phrase
        else:
            self._set_end_silence(self.options.record_end_silence)
        self._start_input_timer(command.max_duration)

    def stop(self, target: str) -> bool:
        """Stop listening for ``target``; a recording ends with what it has."""
        if self._input is None or self._input.request_id != target:
            return False
        if isinstance(self._input, Record):
            self._finish_recording("")
        else:
            self._clear_input()
        return True

    def dtmf(self, digit: str) -> None:
        """A key from the caller: it cuts an interruptible prompt and answers a menu."""
        request = self._input
        cut = self._prompts.cut_by_key(digit)
        rid = request.request_id if request is not None else (cut.request_id if cut else "")
        self._publish(Dtmf(request_id=rid, digit=digit))
        if isinstance(request, Listen) and request.dtmf:
            self._clear_input()
        elif isinstance(request, Record) and request.finish_on_key and digit == request.finish_on_key:
            self._finish_recording(self._utterance.text() if self._utterance else "")

    def typed(self, text: str) -> None:
        """Words the caller typed (``voxflow dev``'s typed caller): heard as a recogniser
        would report a sure utterance, so the rest of the path is the spoken one."""
        if self._input is None:
            self._typed_ahead = text  # nothing asked yet: it answers the next question
            return
        words = [stt.SpeechData(language=LanguageCode(""), text=text, confidence=1.0)]
        self._on_speech(stt.SpeechEvent(type=stt.SpeechEventType.START_OF_SPEECH))
        self._on_speech(stt.SpeechEvent(type=stt.SpeechEventType.FINAL_TRANSCRIPT, alternatives=words))
        self._on_speech(stt.SpeechEvent(type=stt.SpeechEventType.END_OF_SPEECH))

    # ---- session events ------------------------------------------------------

    def _on_user_state(self, event: Any) -> None:
        utterance = self._utterance
        if event.new_state == "speaking":
            if (
                utterance is not None
                and not utterance.closed
                and not utterance.stt_ended
                and utterance.timer is not None
            ):
                utterance.timer.cancel()  # more speech: the silence did not end it
                utterance.timer = None
            self._begin()
        elif event.old_state == "speaking" and utterance is not None and not utterance.closed:
            if utterance.timer is None:
                utterance.timer = self._later(self._grace(), self._end_unfinished)

    def _on_speech(self, event: stt.SpeechEvent) -> None:
        kind = event.type
        if kind == stt.SpeechEventType.START_OF_SPEECH:
            self._begin()
        elif kind == stt.SpeechEventType.INTERIM_TRANSCRIPT and event.alternatives:
            utterance = self._begin()
            best = event.alternatives[0]
            utterance.interim, utterance.interim_confidence = best.text, best.confidence
            self._partial(utterance)
        elif kind == stt.SpeechEventType.FINAL_TRANSCRIPT and event.alternatives:
            utterance = self._begin()
            best = event.alternatives[0]
            utterance.finals.append((best.text, best.confidence))
            utterance.interim = ""
            if utterance.stt_ended:
                self._answer(utterance)
            else:
                self._partial(utterance)
        elif kind == stt.SpeechEventType.END_OF_SPEECH:
            self._stt_ended()

    def _stt_ended(self) -> None:
        utterance = self._utterance
        if utterance is None or utterance.closed:
            return
        utterance.stt_ended = True
        if utterance.finals or utterance.answered:
            self._answer(utterance)
        else:
            self._reschedule(utterance, self.options.final_wait)

    def _on_frame(self, frame: rtc.AudioFrame) -> None:
        if self._recording is not None:
            self._recording.add(frame)

    # ---- utterances ------------------------------------------------------------

    def _begin(self) -> Utterance:
        current = self._utterance
        if current is not None and not current.closed:
            return current
        prompt = self._prompts.playing()
        ignored = False
        if self._input is not None:
            rid = self._input.request_id
        elif prompt is not None and prompt.interruptible:
            rid = prompt.request_id
        elif prompt is not None:
            rid, ignored = "", True
        else:
            rid = ""
        utterance = Utterance(rid, ignored)
        self._utterance = utterance
        if self._voice.session.user_state != "speaking":
            # Begun by the STT alone: if it never ends it, VAD will not either.
            utterance.timer = self._later(self._grace(), self._end_unfinished)
        if not ignored:
            self._publish(SpeechStarted(request_id=rid))
            if self._recording is not None:
                self._recording.heard = True
            if isinstance(self._input, Listen):
                self._start_input_timer(self._input.max_duration)  # counts from the first word
        return utterance

    def _partial(self, utterance: Utterance) -> None:
        if utterance.ignored or utterance.answered:
            return
        text = utterance.text(with_interim=True)
        if text:
            self._publish(
                SpeechPartial(
                    request_id=self._rid(utterance),
                    transcript=text,
                    confidence=utterance.interim_confidence if utterance.interim else utterance.confidence(),
                )
            )

    def _answer(self, utterance: Utterance, *, truncated: bool = False) -> None:
        """The utterance is over (or cut at max_duration): say what was heard."""
        if not truncated or utterance.stt_ended:
            utterance.closed = True
            if utterance.timer is not None:
                utterance.timer.cancel()
                utterance.timer = None
        if utterance.answered or utterance.ignored:
            return
        utterance.answered = True
        text = utterance.text(with_interim=truncated)
        rid = self._rid(utterance)
        if isinstance(self._input, Record):
            self._finish_recording(text)
            return
        self._publish(SpeechComplete(request_id=rid, transcript=text, confidence=utterance.confidence()))
        if isinstance(self._input, Listen) and self._input.request_id == rid:
            self._clear_input()

    def _end_unfinished(self) -> None:
        utterance = self._utterance
        if utterance is None or utterance.closed:
            return
        utterance.timer = None
        utterance.stt_ended = True  # given up on: later STT events start a new one
        self._answer(utterance)

    def _rid(self, utterance: Utterance) -> str:
        return self._input.request_id if self._input is not None else utterance.request_id

    def _reschedule(self, utterance: Utterance, delay: float) -> None:
        if utterance.timer is not None:
            utterance.timer.cancel()
        utterance.timer = self._later(delay, self._end_unfinished)

    # ---- input requests ----------------------------------------------------------

    def _replace_input(self, request: InputRequest) -> None:
        if isinstance(self._input, Record):
            self._finish_recording("")
        self._clear_input()
        self._input = request

    def _clear_input(self) -> None:
        self._input = None
        self._cancel_input_timer()

    def _start_input_timer(self, seconds: float, since: float | None = None) -> None:
        self._cancel_input_timer()
        if seconds <= 0:
            return
        elapsed = time.monotonic() - since if since is not None else 0.0
        self._input_timer = self._later(max(seconds - elapsed, 0.0), self._input_time_up)

    def _cancel_input_timer(self) -> None:
        if self._input_timer is not None:
            self._input_timer.cancel()
            self._input_timer = None

    def _input_time_up(self) -> None:
        """max_duration: a recording ends; an answer still being spoken is cut."""
        self._input_timer = None
        request = self._input
        if isinstance(request, Record):
            self._finish_recording(self._utterance.text(True) if self._utterance else "")
        elif isinstance(request, Listen):
            utterance = self._utterance
            if utterance is not None and not utterance.closed and not utterance.answered:
                self._answer(utterance, truncated=True)

    def _finish_recording(self, transcript: str) -> None:
        recording, request = self._recording, self._input
        self._recording = None
        if recording is None or not isinstance(request, Record):
            return
        self._clear_input()
        if self._answer_silence is not None:
            self._set_end_silence(self._answer_silence)
        try:
            url = recording.save(self.options.recordings_dir)
        except OSError as error:
            log.warning("could not save the recording: %s", error)
            url = ""
        self._publish(
            RecordComplete(
                request_id=recording.request_id,
                url=url,
                transcript=transcript,
                duration=round(recording.seconds, 2) if url else 0.0,
            )
        )

    # ---- engines -----------------------------------------------------------------

    def _set_end_silence(self, seconds: float) -> None:
        """The silence that ends an answer: the end-of-turn rule's when there is one
        (the VAD then ends its segments sooner, engine.agent.turns), else the VAD's."""
        if self._voice.turns is not None:
            self._voice.turns.set_end_silence(seconds)
            return
        update = getattr(self._voice.vad, "update_options", None)
        if update is not None:
            update(min_silence_duration=seconds)

    def _grace(self) -> float:
        """How long after VAD's end of speech an STT that never ends the utterance gets:
        with the end-of-turn rule, VAD's segments end before the answer's silence has."""
        turns = self._voice.turns
        return self.options.turn_grace + (turns.end_silence if turns is not None else 0.0)

    def _expect(self, phrases: tuple[str, ...], end_silence: float) -> None:
        """Tell the recogniser what to expect and the silence that ends the answer: a
        grammar offline; Deepgram's options (engine.agent.cloud_turns), which change
        only between turns, as Deepgram reconnects to change them."""
        turns = self._voice.turns
        if isinstance(turns, DeepgramTurns):
            turns.listen_for(phrases, end_silence)
            return
        self._set_end_silence(end_silence)
        engine = self._voice.stt
        if isinstance(engine, OfflineSTT):
            engine.set_expected_phrases(phrases)

    def _later(self, delay: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(delay, callback)
