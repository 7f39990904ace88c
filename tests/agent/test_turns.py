"""The end of a turn from what the node expects (engine.agent.turns), on real audio:
Silero VAD, pocketsphinx and espeak speech played in real time into the harness."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from engine.agent import wav
from engine.agent.harness import AudioHarness, HarnessOptions
from engine.agent.session import TurnOptions
from engine.agent.turns import EndOfTurn, ExpectingSTT, complete_phrase
from tests.agent.speech import RATE, silence, speech

MENU = ["balance", "my balance", "agent", "representative"]
END_SILENCE = 0.8


def test_a_phrase_that_starts_a_longer_one_is_not_complete() -> None:
    phrases = ["balance", "balance transfer", "my balance", "agent"]
    assert complete_phrase("agent", phrases)
    assert complete_phrase("my balance", phrases)
    assert not complete_phrase("balance", phrases)  # "balance ... transfer" may follow
    assert complete_phrase("balance transfer", phrases)
    assert not complete_phrase(None, phrases) and not complete_phrase("", phrases)


async def _answer(
    clip: np.ndarray, phrases: list[str], policy: EndOfTurn | None = None
) -> tuple[str, float, float, ExpectingSTT | None]:
    """Play ``clip``; returns the transcript, when the turn was decided and when the
    caller's last sound ended (harness seconds), and the end-of-turn rule."""
    policy = policy or EndOfTurn()
    options = HarnessOptions(turns=TurnOptions(end_of_turn=policy))
    async with AudioHarness(options=options) as call:
        call.expect_phrases(phrases)
        if call.voice.turns is not None:
            call.voice.turns.set_end_silence(END_SILENCE)
        start = call.play_caller(np.concatenate([silence(0.5), clip, silence(1.5)]))
        heard = await call.wait_for_transcript(timeout=10)
        sound_end = start + 0.5 + wav.sound_spans(clip, RATE)[-1][1]
        decided = call.events_of("stt_end_of_speech")[0].at
        # Nothing more is heard from the rest of the silence, to its end.
        await call.wait_until(call.line.busy_until)
        assert len(call.events_of("stt")) == 1, call.events_of("stt")
        return heard.text, decided, sound_end, call.voice.turns


def test_a_whole_expected_phrase_ends_the_turn_after_a_short_silence() -> None:
    text, decided, sound_end, turns = asyncio.run(_answer(speech("agent"), MENU))
    assert text == "agent"
    assert turns is not None
    stats = turns.stats
    assert (stats.early_phrase, stats.full_silence) == (1, 0), stats
    print(
        f"\n'agent': decided {(decided - sound_end) * 1000:.0f} ms after the last sound "
        f"(end silence {END_SILENCE * 1000:.0f} ms)"
    )


@pytest.mark.parametrize("pause", [0.35, 0.6])
def test_a_caller_who_pauses_mid_phrase_is_not_cut_off(pause: float) -> None:
    # "my ... balance": "my" alone is no phrase, so the turn waits for the whole
    # silence, and the pause (shorter than it) does not end it.
    clip = np.concatenate([speech("my"), silence(pause), speech("balance")])
    text, _decided, _end, turns = asyncio.run(_answer(clip, MENU))
    assert text == "my balance"
    assert turns is not None
    assert turns.stats.early_phrase + turns.stats.full_silence == 1


def test_free_speech_keeps_the_whole_silence() -> None:
    text, decided, sound_end, turns = asyncio.run(_answer(speech("hello there"), []))
    assert text
    assert turns is not None
    stats = turns.stats
    assert (stats.early_phrase, stats.full_silence, stats.ahead_used) == (0, 1, 1), stats
    assert decided - sound_end >= END_SILENCE - 0.1  # the VAD places the end a little late


def test_switched_off_the_turn_ends_after_the_whole_silence_as_before() -> None:
    text, decided, sound_end, turns = asyncio.run(_answer(speech("agent"), MENU, EndOfTurn(enabled=False)))
    assert text == "agent"
    assert turns is None
