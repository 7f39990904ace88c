"""A whole call on the real engine and real audio: the example menu flow, spoken to.

Temporal workflow (flows/ivr-menu.yaml, its account-balance subflow) → voice
node plugins → memory voice bus → BusAgent → an AgentSession on the audio
harness (Silero VAD, pocketsphinx, espeak-ng). The caller is espeak speech
played into the line in real time. Everything is asserted from the bus and
from the audio the agent played, on the harness timeline.
"""

from __future__ import annotations

import asyncio

import numpy as np

from engine.agent import wav
from engine.agent.audio_io import PlayedSegment
from engine.agent.bus_agent import BusAgent
from engine.agent.control import LocalCallControl
from engine.agent.harness import AudioHarness
from engine.runtime import messages as m
from engine.runtime.calls import call_state, start_call
from engine.runtime.temporal_server import connect_client
from engine.voice.messages import (
    Hangup,
    HangupComplete,
    Listen,
    SpeechComplete,
    SpeechStarted,
    TtsComplete,
    TtsInterrupted,
    TtsStarted,
)
from tests.agent.conftest import BALANCE, CALLER, VoiceEngine, new_call_id
from tests.agent.speech import RATE, onset, speech
from tests.agent.support import BusLog

BARGE_IN_LIMIT = 0.3  # the bar: speech over a prompt stops it within 300 ms
GREETING = "Hello there! Welcome to Acme Bank."
ASK = "How can I help you today?"
NO_INPUT_REPROMPT = "Sorry, I didn't hear anything. Say balance, or agent."


def _sound_between(recording: np.ndarray, start: float, end: float) -> list[tuple[float, float]]:
    """Stretches of agent sound between two timeline times (no gap bridging)."""
    return [(a, b) for a, b in wav.sound_spans(recording, RATE, gap=0.0) if start <= a < end]


def _segment_heard_by(call: AudioHarness, at: float) -> PlayedSegment:
    """The utterance the caller was hearing (or had last heard) at ``at``."""
    started = [s for s in call.speaker.segments if s.started_at is not None and s.started_at <= at]
    assert started, f"nothing was heard by {at:.2f} s"
    return started[-1]


def test_a_menu_call_on_real_audio(voice_engine: VoiceEngine) -> None:
    graph = voice_engine.flows["ivr-menu"]
    call_id = new_call_id()

    async def scenario() -> None:
        client = await connect_client(voice_engine.settings)
        control = LocalCallControl()
        async with AudioHarness() as call, BusLog(voice_engine.bus, call_id, call.timeline) as log:
            agent = BusAgent(voice_engine.bus, call_id, call.voice, control)
            serving = agent.start()
            handle = await start_call(
                client, graph, call_id, call={"caller_number": CALLER}, task_queue=voice_engine.task_queue
            )

            # -- The menu: the caller says "balance" over it, a second in.
            menu = await log.speak("For your balance")
            menu_listen = log.of(Listen)[-1]
            assert "balance" in menu_listen.expected_phrases and menu_listen.dtmf
            await log.wait_for(TtsStarted, lambda e: e.request_id == menu.request_id)
            segment = call.speaker.segments[-1]
            assert segment.started_at is not None
            await call.wait_until(segment.started_at + 1.0)
            answer = speech("balance")
            caller_onset = call.play_caller(answer) + onset(answer)

            heard = await log.wait_for(SpeechComplete, lambda e: e.request_id == menu_listen.request_id)
            cut = await log.wait_for(TtsInterrupted, lambda e: e.request_id == menu.request_id)
            assert heard.message.transcript == "balance"
            assert heard.message.confidence is not None and heard.message.confidence >= 0.5
            assert cut.message.by == "speech"
            started = log.of(SpeechStarted, menu_listen.request_id)
            assert started and log.index(started[0]) < log.index(cut.message), log.event_names()

            # -- The branch: the balance subflow greets, then asks.
            greeting = await log.speak("Hello", after=heard.at)
            assert greeting.text == GREETING
            path = (await call_state(client, call_id)).path
            assert path[:3] == ["welcome", "menu", "balance"], path

            # Barge-in, from the audio: the menu's last sound is within 300 ms of the caller's.
            # The speaker's own segment times bound the menu exactly (bus events are seen a
            # little after the sound they announce).
            greeting_heard = await log.wait_for(TtsStarted, lambda e: e.request_id == greeting.request_id)
            segments = call.speaker.segments
            after_menu = segments[next(i for i, s in enumerate(segments) if s is segment) + 1].started_at
            assert segment.started_at is not None and after_menu is not None
            menu_sound = _sound_between(call.agent_audio(), segment.started_at, after_menu)
            assert menu_sound, "the menu prompt was never heard"
            stop_latency = menu_sound[-1][1] - caller_onset
            print(f"\nbarge-in: the menu stopped {stop_latency * 1000:.0f} ms after the caller began")
            # (Below 0 when the caller began in a pause between the prompt's words: its last
            # sound was then before the caller's first; the cut is by speech all the same.)
            assert stop_latency <= BARGE_IN_LIMIT, stop_latency
            assert segment.interrupted and segment.played < 4.0

            # -- Silence brings the reprompt.
            ask = await log.speak(ASK, after=greeting_heard.at)
            ask_done = await log.wait_for(TtsComplete, lambda e: e.request_id == ask.request_id)
            reprompt = await log.speak("Sorry", after=ask_done.at, timeout=12)
            assert reprompt.text == NO_INPUT_REPROMPT
            reprompt_heard = await log.wait_for(TtsStarted, lambda e: e.request_id == reprompt.request_id)
            reprompt_done = await log.wait_for(TtsComplete, lambda e: e.request_id == reprompt.request_id)
            # On the speaker's own times: the ask ended, five silent seconds, the reprompt.
            asked = _segment_heard_by(call, ask_done.at)
            reprompted = _segment_heard_by(call, reprompt_heard.at)
            assert asked is not reprompted and asked.ended_at and reprompted.started_at
            assert 4.8 <= reprompted.started_at - asked.ended_at <= 7.0  # no_input_timeout: 5s
            recording = call.agent_audio()
            assert not _sound_between(recording, asked.ended_at + 0.05, reprompted.started_at)
            assert _sound_between(recording, reprompted.started_at, reprompted.started_at + 1.0)
            assert not reprompted.interrupted and reprompted.played > 2.0

            # -- "balance" again: the llm, the SQLite lookup, the balance, goodbye.
            await call.wait_until(call.timeline.now() + 0.3)
            call.play_caller(speech("my balance"))
            told = await log.speak("Your current balance", after=reprompt_done.at)
            assert told.text == f"Your current balance is ${BALANCE:g}."
            await log.wait_for(Hangup)
            await log.wait_for(HangupComplete)
            result = await asyncio.wait_for(handle.result(), 30)
            assert await asyncio.wait_for(serving, 5) == "hangup"

        assert result.status == m.COMPLETED, result
        assert control.hung_up is not None
        assert log.spoken()[-2:] == [told.text, "Thank you for calling. Goodbye!"]

    asyncio.run(scenario())
