"""The pocketsphinx STT plugin: grammar of expected phrases, confidence, rejection."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from livekit import rtc

from engine.agent import wav
from engine.agent.grammar import build_grammar, phrase_words
from engine.agent.offline_stt import OfflineSTT, to_pcm16k
from engine.agent.sphinx import fit_from_margin
from engine.core.errors import VoxflowError
from tests.agent.speech import RATE, silence, speech

MENU = ["balance", "my balance", "account balance", "agent", "representative"]


def _recognize(stt: OfflineSTT, samples: np.ndarray, rate: int = RATE) -> tuple[str, float]:
    frame = rtc.AudioFrame(samples.astype(np.int16).tobytes(), rate, 1, len(samples))
    event = asyncio.run(stt.recognize(frame))
    best = event.alternatives[0]
    return best.text, best.confidence


@pytest.fixture(scope="module")
def menu_stt() -> OfflineSTT:
    return OfflineSTT(expected_phrases=MENU)


@pytest.mark.parametrize("voice", ["default", "female-slow", "british"])
@pytest.mark.parametrize("said", ["balance", "agent", "my balance"])
def test_the_expected_phrase_said_is_recognised_with_confidence(
    menu_stt: OfflineSTT, said: str, voice: str
) -> None:
    text, confidence = _recognize(menu_stt, speech(said, voice))
    assert text == said
    assert confidence >= 0.5


def test_the_phrase_comes_back_as_the_flow_wrote_it() -> None:
    stt = OfflineSTT(expected_phrases=["Balance", "Speak to an Agent!"])
    assert _recognize(stt, speech("speak to an agent"))[0] == "Speak to an Agent!"


@pytest.mark.parametrize("said", ["yes", "hello", "cancel"])
def test_a_word_outside_the_grammar_gets_low_confidence(menu_stt: OfflineSTT, said: str) -> None:
    text, confidence = _recognize(menu_stt, speech(said))
    assert confidence < 0.5, (said, text, confidence)


def test_noise_is_no_match(menu_stt: OfflineSTT) -> None:
    noise = np.random.default_rng(3).normal(0, 3000, RATE).astype(np.int16)
    text, confidence = _recognize(menu_stt, noise)
    assert confidence < 0.2, (text, confidence)
    assert text not in MENU


def test_silence_is_no_match(menu_stt: OfflineSTT) -> None:
    text, confidence = _recognize(menu_stt, silence(1.0))
    assert confidence == 0.0 and text not in MENU


def test_the_phrases_can_change_between_answers() -> None:
    stt = OfflineSTT(expected_phrases=["yes", "no"])
    assert _recognize(stt, speech("yes"))[0] == "yes"
    stt.set_expected_phrases(MENU)
    assert stt.expected_phrases == tuple(MENU)
    assert _recognize(stt, speech("agent"))[0] == "agent"


def test_without_phrases_it_transcribes_free_form() -> None:
    text, confidence = _recognize(OfflineSTT(), speech("hello world"))
    assert 0.0 <= confidence <= 1.0
    assert isinstance(text, str)


def test_audio_at_another_rate_in_stereo_is_converted() -> None:
    mono = speech("agent")
    at_48k = np.frombuffer(wav.resample(mono.tobytes(), RATE, 48000), dtype=np.int16)
    stereo = np.repeat(at_48k, 2)
    frame = rtc.AudioFrame(stereo.tobytes(), 48000, 2, len(at_48k))
    pcm = to_pcm16k(frame)
    assert len(pcm) // 2 == pytest.approx(len(mono), abs=200)
    stt = OfflineSTT(expected_phrases=MENU)
    assert _recognize(stt, np.frombuffer(pcm, dtype=np.int16))[0] == "agent"


def test_only_english_is_offered() -> None:
    with pytest.raises(VoxflowError, match="only understands US English"):
        OfflineSTT(language="fr-FR")


def test_phrases_become_dictionary_words() -> None:
    assert phrase_words("Press 2, please!") == ("press", "two", "please")
    assert phrase_words("  I’d like my BALANCE ") == ("i'd", "like", "my", "balance")
    grammar = build_grammar(["balance", "Zorblax card", "press 1"], lambda w: w != "zorblax")
    assert grammar is not None
    assert grammar.skipped == ("Zorblax card",)
    assert grammar.phrase_for(["press", "one"]) == "press 1"
    assert "public <phrase> = balance | press one;" in grammar.jsgf()
    assert build_grammar(["Zorblax"], lambda w: False) is None


def test_the_fit_is_half_at_the_midpoint_and_monotonic() -> None:
    assert fit_from_margin(-1.0) == pytest.approx(0.5)
    assert fit_from_margin(0.0) > 0.95 > 0.05 > fit_from_margin(-2.0)
