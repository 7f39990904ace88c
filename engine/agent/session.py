"""The AgentSession a voxflow call runs on: VAD, STT and TTS, and no LLM.

The flow decides what is said, so there is no language model: the agent
speaks with ``session.say`` and listens through final transcripts. The audio
harness and the LiveKit worker build their sessions here, so a harness test
exercises the same turn handling a phone call gets.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass, field

from livekit import rtc
from livekit.agents import Agent, AgentSession, ModelSettings, stt, tts
from livekit.agents import vad as agents_vad
from livekit.agents.voice.turn import TurnHandlingOptions

from engine.agent.cloud_turns import DeepgramTurns
from engine.agent.prompt_cache import PromptCache
from engine.agent.turns import EndOfTurn, ExpectingSTT

SpeechEventHandler = Callable[[stt.SpeechEvent], None]
AudioFrameHandler = Callable[[rtc.AudioFrame], None]


@dataclass(frozen=True)
class TurnOptions:
    """How the session takes turns.

    ``min_interruption``: seconds of caller speech (as VAD measures it) that
    stop an interruptible prompt. Small, because a caller who speaks over a
    prompt expects it to stop at once (issue: within 300 ms of speech onset).
    ``end_of_turn``: when an answer is over (engine.agent.turns).
    """

    min_interruption: float = 0.1
    endpointing_delay: float = 0.0
    end_of_turn: EndOfTurn = field(default_factory=EndOfTurn)


class VoxflowAgent(Agent):
    """An agent with no instructions that reports every STT event and caller frame.

    livekit-agents' ``user_input_transcribed`` event carries no confidence,
    and the voice bus needs one (low confidence means no_match), so the STT
    node is wrapped to hand each SpeechEvent to the ``speech_listeners`` on
    its way. The caller's audio frames pass the ``audio_listeners`` on their
    way into the STT (the ``record`` command keeps them); frames the session
    discards (speech over a prompt that may not be interrupted) never do.
    """

    def __init__(self, on_speech: SpeechEventHandler | None = None) -> None:
        super().__init__(instructions="")
        self.speech_listeners: list[SpeechEventHandler] = [on_speech] if on_speech else []
        self.audio_listeners: list[AudioFrameHandler] = []

    async def stt_node(
        self, audio: AsyncIterable[rtc.AudioFrame], model_settings: ModelSettings
    ) -> AsyncIterable[stt.SpeechEvent]:
        async for event in Agent.default.stt_node(self, self._tap(audio), model_settings):
            for listener in list(self.speech_listeners):
                listener(event)
            yield event

    async def _tap(self, audio: AsyncIterable[rtc.AudioFrame]) -> AsyncIterator[rtc.AudioFrame]:
        async for frame in audio:
            for listener in list(self.audio_listeners):
                listener(frame)
            yield frame


@dataclass(frozen=True)
class CallVoice:
    """The speech side of one call: what the bus agent drives.

    ``vad`` is the session's own VAD (its options change per listen: the
    silence that ends an answer); ``stt`` and ``tts`` are the engines as
    given (not the session's stream adapters), so grammar and voice changes
    reach them. ``turns`` is the end-of-turn rule wrapped around ``stt`` when
    there is one (its end silence changes per listen instead of the VAD's):
    engine.agent.turns.ExpectingSTT, or for Deepgram
    engine.agent.cloud_turns.DeepgramTurns (which also takes each listen's
    expected phrases into Deepgram's options).
    ``prompt_cache`` keeps synthesised prompts (engine.agent.prompt_cache).
    """

    session: AgentSession
    agent: VoxflowAgent
    stt: stt.STT
    tts: tts.TTS
    vad: agents_vad.VAD
    turns: ExpectingSTT | DeepgramTurns | None = None
    prompt_cache: PromptCache | None = None


def build_session(
    *, stt_engine: stt.STT, tts_engine: tts.TTS, vad: agents_vad.VAD, turns: TurnOptions = TurnOptions()
) -> AgentSession:
    """An AgentSession for one call."""
    turn_handling: TurnHandlingOptions = {
        # End of turn from VAD silence: the flow's end_silence_ms is the VAD's min_silence.
        "turn_detection": "vad",
        "endpointing": {"min_delay": turns.endpointing_delay, "max_delay": 3.0},
        "interruption": {
            "enabled": True,
            "mode": "vad",
            "min_duration": turns.min_interruption,
            # A prompt stopped by the caller stays stopped: the flow hears what they said.
            "resume_false_interruption": False,
            "false_interruption_timeout": None,
            "discard_audio_if_uninterruptible": True,
        },
        "preemptive_generation": {"enabled": False},
    }
    return AgentSession(
        stt=stt_engine,
        tts=tts_engine,
        vad=vad,
        turn_handling=turn_handling,
        # No echo on a SIP line or in the harness; the default 3 s of ignoring
        # interruptions after the agent starts speaking would defeat barge-in.
        aec_warmup_duration=None,
        # The flow keeps its own no-input timers.
        user_away_timeout=None,
        tts_text_transforms=None,
    )
