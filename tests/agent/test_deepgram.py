"""The Deepgram path: caller speech → livekit-plugins-deepgram → a local server that speaks
Deepgram's live WebSocket format (tests/agent/deepgram_server.py) → the bus agent → the bus."""

from __future__ import annotations

import asyncio

import pytest
from livekit.agents.utils import http_context

from engine.agent import engines
from engine.agent.bus_agent import BusAgent
from engine.agent.control import LocalCallControl
from engine.agent.harness import AudioHarness
from engine.voice.channel import Prompt, VoiceChannel
from engine.voice.memory_bus import MemoryVoiceBus
from engine.voice.messages import SpeechComplete, SpeechPartial, TtsComplete
from tests.agent import deepgram_server
from tests.agent.conftest import new_call_id
from tests.agent.speech import speech
from tests.agent.support import BusLog

pytest.importorskip("livekit.plugins.deepgram")
KEY = "test-deepgram-key"


def test_speech_reaches_the_bus_through_deepgram() -> None:
    state = deepgram_server.DeepgramState(api_key=KEY)
    call_id = new_call_id("deepgram")

    async def scenario() -> None:
        runner, url = await deepgram_server.start(state)
        bus = MemoryVoiceBus()
        try:
            async with http_context.open():
                recogniser = engines.make_stt("deepgram", env={"DEEPGRAM_API_KEY": KEY}, base_url=url)
                async with (
                    AudioHarness(stt_engine=recogniser) as call,
                    BusLog(bus, call_id, call.timeline) as log,
                ):
                    agent = BusAgent(bus, call_id, call.voice, LocalCallControl())
                    agent.start()
                    async with VoiceChannel(bus, call_id) as channel:

                        async def answer() -> None:  # once the question has been said
                            await log.wait_for(TtsComplete)
                            call.play_caller(speech("my account balance"))

                        asyncio.ensure_future(answer())
                        result = await channel.listen(
                            prompt=Prompt("Say balance or agent."),
                            end_silence_ms=700,
                            expected_phrases=("balance", "my account balance", "agent"),
                            no_input_timeout=8,
                        )
                    complete = (await log.wait_for(SpeechComplete)).message
                    partials = log.of(SpeechPartial)
                    await agent.leave()
        finally:
            await runner.cleanup()

        assert result.kind == "speech" and result.transcript == "my account balance"
        finals = state.results(final=True)
        assert finals, "the server sent no final result"
        sent = finals[-1]["channel"]["alternatives"][0]
        # What Deepgram said, transcript and confidence, is what reached the bus.
        assert complete.transcript == sent["transcript"]
        assert complete.confidence == pytest.approx(sent["confidence"], abs=1e-4)
        assert complete.confidence is not None and complete.confidence >= 0.5
        assert result.confidence == complete.confidence
        # Interim results became partial transcripts, for live display.
        assert state.results(final=False) and partials
        # The plugin spoke Deepgram's protocol: options in the query, the key in the header.
        connection = state.connections[-1]
        assert connection.authorization == f"Token {KEY}"
        query = connection.query
        assert query["encoding"] == ["linear16"] and query["sample_rate"] == ["16000"]
        assert query["interim_results"] == ["true"] and query["vad_events"] == ["true"]
        assert query["keyterm"] == ["balance", "my account balance", "agent"]
        assert query["endpointing"] == ["200"]  # a phrase is expected: the short silence
        assert connection.audio_bytes > 16000 * 2  # seconds of real audio went up

    asyncio.run(scenario())


def test_a_wrong_deepgram_key_is_refused_by_the_server() -> None:
    state = deepgram_server.DeepgramState(api_key=KEY)

    async def scenario() -> int:
        import aiohttp

        runner, url = await deepgram_server.start(state)
        try:
            async with aiohttp.ClientSession() as session:
                async with session.get(
                    url + "?encoding=linear16", headers={"Authorization": "Token wrong"}
                ) as response:
                    body = await response.json()
                    assert body["err_code"] == "INVALID_AUTH"
                    return response.status
        finally:
            await runner.cleanup()

    assert asyncio.run(scenario()) == 401
