"""Each listen's expectations reach Deepgram, and Deepgram's results end the turn early
(engine.agent.cloud_turns): real caller audio (espeak) in real time → the audio harness →
livekit-plugins-deepgram → the local server speaking Deepgram's live format
(tests/agent/deepgram_server.py), which counts the silence on the audio it receives."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from livekit.agents.utils import http_context

from engine.agent import cloud_options, engines, wav
from engine.agent.bus_agent import BusAgent
from engine.agent.cloud_turns import DeepgramTurns, matching_phrase
from engine.agent.control import LocalCallControl
from engine.agent.harness import AudioHarness, HarnessOptions
from engine.agent.session import TurnOptions
from engine.agent.turns import EndOfTurn
from engine.voice.channel import Prompt, VoiceChannel
from engine.voice.memory_bus import MemoryVoiceBus
from engine.voice.messages import SpeechComplete
from tests.agent import deepgram_server
from tests.agent.conftest import new_call_id
from tests.agent.speech import RATE, silence, speech
from tests.agent.support import BusLog

pytest.importorskip("livekit.plugins.deepgram")
KEY = "test-deepgram-key"
MENU = ("balance", "my balance", "agent", "representative")
END_SILENCE = 0.8


def test_options_for_a_listen() -> None:
    nova3 = cloud_options.DeepgramSettings()
    options = cloud_options.deepgram_turn_options(nova3, MENU, 800, short_silence_ms=200)
    assert options == {
        "endpointing_ms": 200,
        "interim_results": True,
        "vad_events": True,
        "utterance_end_ms": 1000,
        "keyterm": list(MENU),
    }
    free = cloud_options.deepgram_turn_options(nova3, (), 1500, short_silence_ms=200)
    assert free["endpointing_ms"] == 1500 and free["utterance_end_ms"] == 1500 and free["keyterm"] == []
    off = cloud_options.deepgram_turn_options(nova3, MENU, 800, short_silence_ms=None)
    assert off["endpointing_ms"] == 800
    older = cloud_options.DeepgramSettings(model="nova-2-phonecall")
    keywords = cloud_options.deepgram_turn_options(
        older, ("my balance", "balance"), 800, short_silence_ms=200
    )
    assert keywords["keywords"] == [("my", 2.0), ("balance", 2.0)] and "keyterm" not in keywords


def test_a_phrase_is_matched_word_for_word() -> None:
    assert matching_phrase("Agent.", MENU) == "agent"
    assert matching_phrase("uh, my balance", MENU) == "my balance"
    assert matching_phrase("my account balance", MENU) is None
    assert matching_phrase("", MENU) is None


async def _wait_for(condition: Any, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError("the condition never held")
        await asyncio.sleep(0.02)


async def _answer(
    state: deepgram_server.DeepgramState,
    clip: np.ndarray,
    phrases: tuple[str, ...],
    policy: EndOfTurn | None = None,
    model: str | None = None,
) -> tuple[str, float, float, DeepgramTurns]:
    """Play ``clip`` to a harness on Deepgram; the transcript, when the turn was decided and
    when the caller's last sound ended (harness seconds), and the turn rule."""
    runner, url = await deepgram_server.start(state)
    env = {"DEEPGRAM_API_KEY": KEY, **({"VOXFLOW_DEEPGRAM_MODEL": model} if model else {})}
    try:
        async with http_context.open():
            recogniser = engines.make_stt("deepgram", env=env, base_url=url)
            options = HarnessOptions(turns=TurnOptions(end_of_turn=policy or EndOfTurn()))
            async with AudioHarness(stt_engine=recogniser, options=options) as call:
                turns = call.voice.turns
                assert isinstance(turns, DeepgramTurns)
                turns.listen_for(phrases, END_SILENCE)
                wanted = str(int(turns.endpointing * 1000))
                await _wait_for(
                    lambda: state.connections and state.connections[-1].query["endpointing"] == [wanted]
                )
                start = call.play_caller(np.concatenate([silence(0.3), clip, silence(2.0)]))
                decided = (await call.wait_for_event("stt_end_of_speech", after=start, timeout=10)).at
                sound_end = start + 0.3 + wav.sound_spans(clip, RATE)[-1][1]
                await call.wait_until(start + 0.3 + len(clip) / RATE + 1.5)
                assert len(call.events_of("stt_end_of_speech")) == 1, call.events
                text = " ".join(e.detail["text"] for e in call.events_of("stt") if e.at <= decided)
                return text, decided, sound_end, turns
    finally:
        await runner.cleanup()


def test_a_whole_expected_phrase_ends_the_turn_at_the_short_endpointing() -> None:
    state = deepgram_server.DeepgramState(api_key=KEY)
    text, decided, sound_end, turns = asyncio.run(_answer(state, speech("agent"), MENU))
    assert text.lower().strip(".") == "agent"
    assert (turns.stats.early_phrase, turns.stats.full_silence, turns.stats.held) == (1, 0, 0)
    query = state.connections[-1].query
    # The node's expectations reached Deepgram: its phrases as key terms, the short silence.
    assert query["keyterm"] == list(MENU) and query["endpointing"] == ["200"]
    assert query["interim_results"] == ["true"] and query["vad_events"] == ["true"]
    assert query["utterance_end_ms"] == ["1000"]
    # Deepgram's answer: interim results while the caller spoke, then speech_final.
    sent = state.connections[-1].sent
    assert any(m["type"] == "Results" and not m["is_final"] for m in sent)
    assert any(m["type"] == "SpeechStarted" for m in sent)
    assert any(m["type"] == "Results" and m["speech_final"] for m in sent)
    print(f"\n'agent' on Deepgram: decided {(decided - sound_end) * 1000:.0f} ms after the last sound")


def test_switched_off_the_turn_waits_for_the_whole_silence() -> None:
    state = deepgram_server.DeepgramState(api_key=KEY)
    text, decided, sound_end, turns = asyncio.run(
        _answer(state, speech("agent"), MENU, EndOfTurn(enabled=False))
    )
    assert text.lower().strip(".") == "agent"
    assert (turns.stats.early_phrase, turns.stats.full_silence) == (0, 1)
    assert state.connections[-1].query["endpointing"] == [str(int(END_SILENCE * 1000))]
    # Deepgram's endpointing: the end comes after the whole silence of audio.
    assert decided - sound_end >= END_SILENCE - 0.05


@pytest.mark.parametrize("pause", [0.35, 0.6])
def test_a_caller_who_pauses_mid_phrase_is_not_cut_off(pause: float) -> None:
    # "my ... balance": Deepgram ends speech after "my" (200 ms), which is no phrase, so
    # the turn is held for the rest of the silence; "balance" comes before it is over.
    state = deepgram_server.DeepgramState(api_key=KEY)
    clip = np.concatenate([speech("my"), silence(pause), speech("balance")])
    text, _decided, _end, turns = asyncio.run(_answer(state, clip, MENU))
    finals = state.results(final=True)
    assert len([m for m in finals if m["speech_final"]]) == 2  # Deepgram ended speech twice
    assert turns.stats.held >= 1 and turns.stats.resumed >= 1
    assert text.split()[-1].lower().strip(".") == "balance" and len(text.split()) >= 2, text


def test_free_speech_ends_at_deepgrams_speech_final_after_the_whole_silence() -> None:
    state = deepgram_server.DeepgramState(api_key=KEY)
    text, decided, sound_end, turns = asyncio.run(_answer(state, speech("hello there"), ()))
    assert text
    assert (turns.stats.early_phrase, turns.stats.full_silence) == (0, 1)
    query = state.connections[-1].query
    assert query["endpointing"] == ["800"] and "keyterm" not in query
    assert decided - sound_end >= END_SILENCE - 0.05


def test_an_older_model_gets_keywords() -> None:
    state = deepgram_server.DeepgramState(api_key=KEY)
    text, _d, _e, turns = asyncio.run(_answer(state, speech("agent"), MENU, model="nova-2-phonecall"))
    query = state.connections[-1].query
    assert query["model"] == ["nova-2-phonecall"]
    assert query["keywords"] == ["balance:2.0", "my:2.0", "agent:2.0", "representative:2.0"]
    assert "keyterm" not in query
    assert text.lower().strip(".") == "agent" and turns.stats.early_phrase == 1


def test_options_follow_the_node_and_change_only_between_turns() -> None:
    """Two listens of one call through the bus: each reaches Deepgram as its own options;
    a change asked for while the caller speaks waits for the end of the turn."""
    state = deepgram_server.DeepgramState(api_key=KEY)
    call_id = new_call_id("deepgram-nodes")

    async def scenario() -> tuple[list[SpeechComplete], DeepgramTurns, int, int]:
        runner, url = await deepgram_server.start(state)
        bus = MemoryVoiceBus()
        try:
            async with http_context.open():
                recogniser = engines.make_stt("deepgram", env={"DEEPGRAM_API_KEY": KEY}, base_url=url)
                async with (
                    AudioHarness(stt_engine=recogniser) as call,
                    BusLog(bus, call_id, call.timeline) as log,
                ):
                    turns = call.voice.turns
                    assert isinstance(turns, DeepgramTurns)
                    agent = BusAgent(bus, call_id, call.voice, LocalCallControl())
                    agent.start()
                    async with VoiceChannel(bus, call_id) as channel:

                        async def answer(clip: np.ndarray, after: float) -> None:
                            await asyncio.sleep(after)
                            call.play_caller(clip)

                        asyncio.ensure_future(answer(speech("agent"), 1.6))
                        first = await channel.listen(
                            prompt=Prompt("Say agent."),
                            end_silence_ms=700,
                            expected_phrases=("agent", "balance"),
                            no_input_timeout=8,
                        )
                        asyncio.ensure_future(answer(speech("I lost my card"), 2.0))
                        second = await channel.listen(
                            prompt=Prompt("What happened?"), end_silence_ms=900, no_input_timeout=8
                        )
                    assert first.kind == "speech" and second.kind == "speech"
                    answers = [m for m in log.of(SpeechComplete)]
                    # While the caller speaks, a new listen's options wait for the end of the turn.
                    connections = len(state.connections)
                    call.play_caller(np.concatenate([speech("hello there hello there"), silence(1.5)]))
                    await _wait_for(lambda: turns._streams and turns._streams[0].in_turn)
                    turns.listen_for(("yes", "no"), 0.8)
                    during = len(state.connections)
                    await _wait_for(lambda: not turns._streams[0].in_turn)
                    await _wait_for(lambda: state.connections[-1].query.get("keyterm") == ["yes", "no"])
                    await agent.leave()
                    return answers, turns, connections, during
        finally:
            await runner.cleanup()

    answers, turns, connections, during = asyncio.run(scenario())
    assert [a.transcript.lower().strip(".") for a in answers][:1] == ["agent"]
    queries = [c.query for c in state.connections]
    menu = next(q for q in queries if q.get("keyterm") == ["agent", "balance"])
    assert menu["endpointing"] == ["200"]
    free = queries[queries.index(menu) + 1]
    assert free["endpointing"] == ["900"] and "keyterm" not in free
    assert during == connections  # no reconnect in the middle of the caller's turn
    assert turns.stats.deferred == 1
    assert turns.stats.option_changes[-1]["keyterm"] == ["yes", "no"]
    # Each change is a new connection (the plugin reconnects): its handshake is measured.
    assert len(turns.stats.connect_seconds) >= len(turns.stats.option_changes)
