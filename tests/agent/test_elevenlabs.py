"""The ElevenLabs path: text → livekit-plugins-elevenlabs → a local server that speaks
ElevenLabs' WebSocket and HTTP formats (tests/agent/elevenlabs_server.py) → audio frames."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from livekit.agents.utils import http_context

from engine.agent import engines, wav
from engine.agent.bus_agent import BusAgent
from engine.agent.control import LocalCallControl
from engine.agent.harness import AudioHarness
from engine.voice.channel import VoiceChannel
from engine.voice.memory_bus import MemoryVoiceBus
from engine.voice.messages import TtsComplete, TtsStarted
from tests.agent import elevenlabs_server
from tests.agent.conftest import new_call_id
from tests.agent.speech import RATE, speech
from tests.agent.support import BusLog

pytest.importorskip("livekit.plugins.elevenlabs")
KEY = "test-eleven-key"
VOICE = "voice-for-tests"
TEXT = "Your balance is forty two dollars. Is there anything else?"


def test_a_prompt_is_spoken_through_elevenlabs_and_heard() -> None:
    state = elevenlabs_server.ElevenLabsState(api_key=KEY)
    call_id = new_call_id("eleven")

    async def scenario() -> tuple[np.ndarray, float]:
        runner, url = await elevenlabs_server.start(state)
        bus = MemoryVoiceBus()
        try:
            async with http_context.open():
                synthesiser = engines.make_tts(
                    "elevenlabs", env={"ELEVEN_API_KEY": KEY}, voice=VOICE, base_url=url
                )
                async with (
                    AudioHarness(tts_engine=synthesiser) as call,
                    BusLog(bus, call_id, call.timeline) as log,
                ):
                    agent = BusAgent(bus, call_id, call.voice, LocalCallControl())
                    agent.start()
                    async with VoiceChannel(bus, call_id) as channel:
                        result = await channel.speak(TEXT)
                    assert not result.interrupted
                    started = await log.wait_for(TtsStarted)
                    done = await log.wait_for(TtsComplete)
                    await agent.leave()
                    await synthesiser.aclose()
                    return call.agent_audio(), done.at - started.at
        finally:
            await runner.cleanup()

    recording, took = asyncio.run(scenario())
    assert recording.size
    # The plugin used the multi-context WebSocket API, as ElevenLabs documents it.
    socket = state.sockets[-1]
    assert socket["voice_id"] == VOICE
    assert socket["query"]["output_format"] == "pcm_16000"
    assert socket["query"]["model_id"]
    contexts = {m.get("context_id") for m in socket["messages"] if m.get("context_id")}
    assert len(contexts) == 1
    assert any(m.get("close_context") for m in socket["messages"])
    sent_text = "".join(m.get("text", "") for m in socket["messages"]).split()
    assert " ".join(sent_text) == TEXT
    # What it answered reached the caller: real speech, as long as the text needs.
    expected = len(speech(TEXT)) / RATE
    heard = wav.sound_spans(recording, RATE)
    assert heard and heard[-1][1] - heard[0][0] == pytest.approx(expected, abs=0.6)
    assert wav.sound_seconds(recording, RATE) > 1.5
    assert took >= expected - 0.5  # played in real time


def test_elevenlabs_http_streaming_gives_audio_frames() -> None:
    state = elevenlabs_server.ElevenLabsState(api_key=KEY)

    async def scenario() -> tuple[bytes, set[int]]:
        runner, url = await elevenlabs_server.start(state)
        try:
            async with http_context.open():
                synthesiser = engines.make_tts(
                    "elevenlabs", env={"ELEVEN_API_KEY": KEY}, voice=VOICE, base_url=url
                )
                chunks: list[bytes] = []
                rates: set[int] = set()
                async for audio in synthesiser.synthesize("Goodbye."):
                    chunks.append(bytes(audio.frame.data))
                    rates.add(audio.frame.sample_rate)
                return b"".join(chunks), rates
        finally:
            await runner.cleanup()

    pcm, rates = asyncio.run(scenario())
    assert rates == {16000}
    assert wav.sound_seconds(np.frombuffer(pcm, dtype=np.int16), 16000) > 0.3
    request = state.http_requests[-1]
    assert request["voice_id"] == VOICE and request["body"]["text"] == "Goodbye."
    assert request["query"]["output_format"] == "pcm_16000"
