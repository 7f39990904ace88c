"""The audio harness: a real AgentSession on a simulated phone line.

No LiveKit room: the session's input is a :class:`CallerLine` that plays the
caller's audio (a WAV, or PCM a test made) in real time, and its output is a
:class:`RecordingSpeaker` that records what the agent says, timed as the
caller would hear it. VAD, STT, TTS, endpointing and barge-in are the real
ones, so tests and ``bench/`` measure them on real audio.

    async with AudioHarness() as call:
        call.expect_phrases(["balance", "agent"])
        call.play_caller("caller.wav")
        heard = await call.wait_for_transcript()
        await call.say("You said " + heard.text)
        wav.write(Path("agent.wav"), call.agent_audio(), 16000)

Everything is on one timeline (seconds since the harness started):
``call.events`` lists the session's events at their times (VAD start and
end of the caller's speech, agent speaking, transcripts; the VAD's own marks of
that speech in audio time, which a busy machine does not move) and
``call.speaker.segments`` each utterance the agent played, with its start,
end and whether it was interrupted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from livekit.agents import AgentSession, stt, tts
from livekit.agents.voice import SpeechHandle

from engine.agent import vad as vad_models
from engine.agent import wav
from engine.agent.audio_io import CallerLine, RecordingSpeaker
from engine.agent.cloud_turns import DeepgramTurns
from engine.agent.offline_stt import OfflineSTT
from engine.agent.offline_tts import OfflineTTS
from engine.agent.prompt_cache import PromptCache
from engine.agent.session import CallVoice, TurnOptions, VoxflowAgent, build_session
from engine.agent.timeline import Timeline
from engine.agent.turns import session_stt, turn_rule
from engine.agent.vad_marks import MarkingVAD
from engine.core.errors import VoxflowError


@dataclass(frozen=True)
class HarnessEvent:
    """Something the session reported, at ``at`` seconds on the timeline.

    ``kind`` is one of: ``caller_speaking`` / ``caller_silent`` (VAD start /
    end of speech, as the session reports them: wall-clock stamps, later on a busy
    machine), ``vad_speech_start`` / ``vad_speech_end`` (the same, placed by the
    VAD on the caller's audio: audio time; ``vad_speech_end_heard``: where the audio was
    when the VAD decided), ``agent_state`` (``detail["state"]``), ``transcript``
    (``detail["text"]``, ``detail["final"]``), ``stt_end_of_speech`` (the
    STT's VAD closed the utterance and recognition starts), ``stt`` (an STT
    final transcript with ``detail["confidence"]``).
    """

    at: float
    kind: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Transcript:
    text: str
    confidence: float | None
    at: float


@dataclass(frozen=True)
class HarnessOptions:
    sample_rate: int = 16000
    frame_ms: int = 20
    vad: vad_models.VadOptions = vad_models.VadOptions()
    turns: TurnOptions = TurnOptions()


class AudioHarness:
    """One simulated call. Use as ``async with AudioHarness(...) as call``.

    ``stt_engine`` and ``tts_engine`` default to the offline ones.
    """

    def __init__(
        self,
        *,
        stt_engine: stt.STT | None = None,
        tts_engine: tts.TTS | None = None,
        options: HarnessOptions = HarnessOptions(),
        on_agent_audio: Callable[[bytes], None] | None = None,
        prompt_cache: PromptCache | None = None,
    ) -> None:
        """``on_agent_audio`` is given the agent's audio (16-bit PCM at the sample rate)
        piece by piece, as the caller hears it; ``prompt_cache`` keeps the prompts
        a bus agent says (engine.agent.prompt_cache)."""
        self.prompt_cache = prompt_cache
        self.options = options
        self.stt = stt_engine or OfflineSTT()
        self.tts = tts_engine or OfflineTTS(sample_rate=options.sample_rate)
        self.timeline = Timeline()
        self.line = CallerLine(self.timeline, sample_rate=options.sample_rate, frame_ms=options.frame_ms)
        self.speaker = RecordingSpeaker(
            self.timeline, sample_rate=options.sample_rate, on_heard=on_agent_audio
        )
        self.events: list[HarnessEvent] = []
        self._transcripts: asyncio.Queue[Transcript] = asyncio.Queue()
        self._last_confidence: float | None = None
        self._session: AgentSession | None = None
        self._voice: CallVoice | None = None
        self.agent = VoxflowAgent(on_speech=self._on_stt_event)

    @property
    def session(self) -> AgentSession:
        if self._session is None:
            raise VoxflowError("the audio harness is not running; use 'async with AudioHarness()'")
        return self._session

    @property
    def voice(self) -> CallVoice:
        """The session and its engines, for a bus agent to drive (engine.agent.bus_agent)."""
        if self._voice is None:
            raise VoxflowError("the audio harness is not running; use 'async with AudioHarness()'")
        return self._voice

    async def __aenter__(self) -> AudioHarness:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        vad = await asyncio.to_thread(vad_models.for_call, self.options.vad)
        await asyncio.to_thread(self.stt.prewarm)
        heard_by = session_stt(self.stt, vad, self.options.turns.end_of_turn)
        # The session's VAD also marks where it put the caller's speech, in audio time.
        marked = MarkingVAD(vad, lambda kind, at: self._add(f"vad_{kind}", at))
        session = build_session(
            stt_engine=heard_by, tts_engine=self.tts, vad=marked, turns=self.options.turns
        )
        session.input.audio = self.line
        session.output.audio = self.speaker
        session.on("user_state_changed", self._on_user_state)
        session.on("agent_state_changed", self._on_agent_state)
        session.on("user_input_transcribed", self._on_transcribed)
        self.speaker.start()
        # The timeline starts now, with the line: frame 0 is due at 0.0.
        self.timeline.restart()
        await session.start(self.agent, record=False)
        self._session = session
        self._voice = CallVoice(
            session,
            self.agent,
            self.stt,
            self.tts,
            vad,
            turns=turn_rule(heard_by),
            prompt_cache=self.prompt_cache,
        )

    async def aclose(self) -> None:
        self.line.close()
        if self._session is not None:
            await self._session.aclose()
            self._session = None
            self._voice = None
        await self.speaker.aclose()

    # ------------------------------------------------------------ driving

    def play_caller(self, audio: bytes | np.ndarray | Path | str) -> float:
        """Queue caller audio (16-bit PCM, samples, or a WAV path) on the line;
        returns the timeline time at which it starts."""
        rate = self.options.sample_rate
        if isinstance(audio, (str, Path)):
            pcm = wav.read_pcm(Path(audio), rate)
        elif isinstance(audio, np.ndarray):
            pcm = audio.astype(np.int16).tobytes()
        else:
            pcm = audio
        return self.line.play(pcm)

    def expect_phrases(self, phrases: Iterable[str]) -> None:
        """Tell the recogniser what the caller is expected to say next (a listen or
        menu node's phrases); engines that take no grammar ignore it."""
        if isinstance(self.stt, OfflineSTT):
            self.stt.set_expected_phrases(phrases)
        turns = self._voice.turns if self._voice is not None else None
        if isinstance(turns, DeepgramTurns):
            turns.listen_for(tuple(phrases), turns.end_silence)

    def say(self, text: str, *, allow_interruptions: bool = True) -> SpeechHandle:
        """Have the agent say ``text``; await the handle for the end of its playout."""
        return self.session.say(text, allow_interruptions=allow_interruptions, add_to_chat_ctx=False)

    async def wait_for_transcript(self, timeout: float = 10.0) -> Transcript:
        """The caller's next final transcript (raises TimeoutError after ``timeout``)."""
        return await asyncio.wait_for(self._transcripts.get(), timeout)

    async def wait_until(self, at: float) -> None:
        """Sleep until ``at`` on the timeline."""
        await self.timeline.sleep_until(at)

    async def wait_for_event(self, kind: str, *, after: float = 0.0, timeout: float = 10.0) -> HarnessEvent:
        """The first event of ``kind`` at or after ``after`` (timeline seconds)."""

        async def poll() -> HarnessEvent:
            while True:
                for event in self.events:
                    if event.kind == kind and event.at >= after:
                        return event
                await asyncio.sleep(0.01)

        return await asyncio.wait_for(poll(), timeout)

    # ------------------------------------------------------------ results

    def agent_audio(self) -> np.ndarray:
        """What the caller heard from the agent, int16 samples from time 0."""
        return self.speaker.recording()

    def caller_audio(self) -> np.ndarray:
        """What the caller sent, int16 samples from time 0."""
        return self.line.recording()

    def events_of(self, kind: str) -> list[HarnessEvent]:
        return [event for event in self.events if event.kind == kind]

    # ------------------------------------------------------------ session events

    def _add(self, kind: str, at: float, **detail: Any) -> None:
        self.events.append(HarnessEvent(at, kind, detail))

    def _on_user_state(self, event: Any) -> None:
        at = self.timeline.from_wall(event.created_at)
        if event.new_state == "speaking":
            self._add("caller_speaking", at)
        elif event.old_state == "speaking":
            self._add("caller_silent", at)

    def _on_agent_state(self, event: Any) -> None:
        self._add("agent_state", self.timeline.from_wall(event.created_at), state=event.new_state)

    def _on_stt_event(self, event: stt.SpeechEvent) -> None:
        now = self.timeline.now()
        if event.type == stt.SpeechEventType.END_OF_SPEECH:
            # The STT's own VAD decided the utterance is over and starts recognising it.
            self._add("stt_end_of_speech", now)
        elif event.type == stt.SpeechEventType.FINAL_TRANSCRIPT and event.alternatives:
            best = event.alternatives[0]
            self._last_confidence = best.confidence
            self._add("stt", now, text=best.text, confidence=best.confidence)

    def _on_transcribed(self, event: Any) -> None:
        at = self.timeline.from_wall(event.created_at)
        self._add("transcript", at, text=event.transcript, final=event.is_final)
        if event.is_final:
            self._transcripts.put_nowait(Transcript(event.transcript, self._last_confidence, at))
