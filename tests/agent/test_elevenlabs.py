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
from engine.core.errors import VoxflowError
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


def _synthesise(text: str, env: dict[str, str]) -> tuple[elevenlabs_server.ElevenLabsState, set[int], bytes]:
    """``text`` through the plugin's stream-input WebSocket, as a session says a prompt."""
    state = elevenlabs_server.ElevenLabsState(api_key=KEY)

    async def scenario() -> tuple[set[int], bytes]:
        runner, url = await elevenlabs_server.start(state)
        try:
            async with http_context.open():
                synthesiser = engines.make_tts(
                    "elevenlabs", env={"ELEVEN_API_KEY": KEY, **env}, voice=VOICE, base_url=url
                )
                stream = synthesiser.stream()
                stream.push_text(text)
                stream.end_input()
                rates: set[int] = set()
                chunks: list[bytes] = []
                async for audio in stream:
                    rates.add(audio.frame.sample_rate)
                    chunks.append(bytes(audio.frame.data))
                await stream.aclose()
                await synthesiser.aclose()
                return rates, b"".join(chunks)
        finally:
            await runner.cleanup()

    rates, pcm = asyncio.run(scenario())
    return state, rates, pcm


LONG = "Your balance is forty two dollars. Your last payment was on Monday. Anything else?"


def test_default_stream_input_is_for_a_phone_line_and_speaks_from_the_first_sentence() -> None:
    state, rates, pcm = _synthesise(LONG, {})
    socket = state.sockets[-1]
    query = socket["query"]
    # Phone-call defaults: raw 16 kHz PCM (the line's rate: no decoding, no resampling),
    # ElevenLabs' lowest-latency model, auto mode.
    assert query["output_format"] == "pcm_16000" and rates == {16000}
    assert query["model_id"] == "eleven_flash_v2_5"
    assert query["auto_mode"] == "true"
    init = socket["messages"][0]
    assert init["text"] == " " and "voice_settings" in init and init["context_id"]
    assert "generation_config" not in init  # auto mode: no chunk schedule
    # Sentence by sentence, each flushed: the first audio comes from the first sentence.
    assert [m.get("flush") for m in socket["messages"][1:4]] == [True, True, True]
    generations = [g["text"] for g in socket["generations"]]
    assert generations[0] == "Your balance is forty two dollars."
    assert len(generations) == 3
    assert wav.sound_seconds(np.frombuffer(pcm, dtype=np.int16), 16000) > 2.0


def test_a_chunk_schedule_and_narrowband_audio_from_settings() -> None:
    env = {
        "VOXFLOW_ELEVENLABS_AUTO_MODE": "off",
        "VOXFLOW_ELEVENLABS_CHUNK_SCHEDULE": "50,90,120,150",
        "VOXFLOW_ELEVENLABS_FORMAT": "pcm_8000",
        "VOXFLOW_ELEVENLABS_MODEL": "eleven_turbo_v2_5",
    }
    state, rates, pcm = _synthesise(LONG, env)
    socket = state.sockets[-1]
    assert socket["query"]["output_format"] == "pcm_8000" and rates == {8000}
    assert socket["query"]["auto_mode"] == "false"
    assert socket["query"]["model_id"] == "eleven_turbo_v2_5"
    init = socket["messages"][0]
    assert init["generation_config"] == {"chunk_length_schedule": [50, 90, 120, 150]}
    # Words without flushes: the server generated once 50 characters were in, then the rest.
    generations = [g["text"] for g in socket["generations"]]
    assert len(generations[0]) >= 50 and len(generations) == 2, generations
    assert " ".join(generations).split() == LONG.split()
    assert wav.sound_seconds(np.frombuffer(pcm, dtype=np.int16), 8000) > 2.0


def test_the_http_path_asks_for_streaming_latency_optimisation() -> None:
    state = elevenlabs_server.ElevenLabsState(api_key=KEY)

    async def scenario() -> None:
        runner, url = await elevenlabs_server.start(state)
        try:
            async with http_context.open():
                synthesiser = engines.make_tts(
                    "elevenlabs",
                    env={"ELEVEN_API_KEY": KEY, "VOXFLOW_ELEVENLABS_LATENCY": "2"},
                    voice=VOICE,
                    base_url=url,
                )
                async for _audio in synthesiser.synthesize("Hello."):
                    pass
        finally:
            await runner.cleanup()

    asyncio.run(scenario())
    query = state.http_requests[-1]["query"]
    assert query["optimize_streaming_latency"] == "2" and query["output_format"] == "pcm_16000"


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("VOXFLOW_ELEVENLABS_FORMAT", "mp3_44100_128", "pcm_16000 or pcm_8000"),
        ("VOXFLOW_ELEVENLABS_FORMAT", "ulaw_8000", "pcm_8000"),
        ("VOXFLOW_ELEVENLABS_CHUNK_SCHEDULE", "10,20", "between 50 and 500"),
        ("VOXFLOW_ELEVENLABS_AUTO_MODE", "maybe", "on or off"),
        ("VOXFLOW_ELEVENLABS_LATENCY", "9", "0 to 4"),
    ],
)
def test_a_bad_setting_is_named_before_anything_starts(variable: str, value: str, words: str) -> None:
    env = {"ELEVEN_API_KEY": KEY, variable: value}
    found = engines.problems(engines.EngineChoice(tts="elevenlabs"), env)
    assert any(variable in line and words in line for line in found), found
    with pytest.raises(VoxflowError, match=variable):
        engines.make_tts("elevenlabs", env=env)
