"""The espeak-ng TTS plugin makes real, audible speech of a plausible length."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from engine.agent import wav
from engine.agent.offline_tts import OfflineTTS
from engine.core.errors import VoxflowError

SENTENCE = "Welcome to Acme Bank. How can I help you today?"


async def _synthesize(engine: OfflineTTS, text: str) -> tuple[np.ndarray, float, set[int]]:
    started = time.perf_counter()
    first: float | None = None
    chunks: list[bytes] = []
    rates: set[int] = set()
    async for audio in engine.synthesize(text):
        if first is None:
            first = time.perf_counter() - started
        chunks.append(bytes(audio.frame.data))
        rates.add(audio.frame.sample_rate)
    assert first is not None
    return np.frombuffer(b"".join(chunks), dtype=np.int16), first, rates


def test_a_sentence_is_audible_speech_of_plausible_length() -> None:
    samples, first_chunk, rates = asyncio.run(_synthesize(OfflineTTS(), SENTENCE))
    assert rates == {16000}
    duration = len(samples) / 16000
    # 9 words at 175 words per minute, plus the pause between the sentences.
    assert 2.0 < duration < 5.0, duration
    assert wav.sound_seconds(samples, 16000) > 1.5
    assert wav.window_levels(samples, 16000).max() > -30  # dBFS: clearly audible
    assert first_chunk < 0.5


def test_resamples_to_the_rate_asked_for_without_changing_the_length() -> None:
    slow, _, _ = asyncio.run(_synthesize(OfflineTTS(sample_rate=16000), SENTENCE))
    fast, _, rates = asyncio.run(_synthesize(OfflineTTS(sample_rate=24000), SENTENCE))
    assert rates == {24000}
    assert len(fast) / 24000 == pytest.approx(len(slow) / 16000, rel=0.02)


def test_a_slower_rate_makes_longer_speech() -> None:
    normal, _, _ = asyncio.run(_synthesize(OfflineTTS(rate=175), SENTENCE))
    slow, _, _ = asyncio.run(_synthesize(OfflineTTS(rate=120), SENTENCE))
    assert len(slow) > len(normal) * 1.2


def test_concurrent_syntheses_do_not_mix() -> None:
    """espeak is one global library: parallel requests are serialised, not interleaved."""

    async def both() -> tuple[np.ndarray, np.ndarray]:
        engine = OfflineTTS()
        (one, _, _), (two, _, _) = await asyncio.gather(
            _synthesize(engine, SENTENCE), _synthesize(engine, SENTENCE)
        )
        return one, two

    one, two = asyncio.run(both())
    alone, _, _ = asyncio.run(_synthesize(OfflineTTS(), SENTENCE))
    # espeak's output varies by a few samples from call to call, so compare shapes:
    # interleaved chunks would make one stream longer and the other shorter.
    for samples in (one, two):
        assert len(samples) == pytest.approx(len(alone), rel=0.02)
        assert len(wav.sound_spans(samples, 16000)) == len(wav.sound_spans(alone, 16000))


def test_an_unknown_voice_is_a_plain_error() -> None:
    with pytest.raises(VoxflowError, match="no voice 'rachel'"):
        OfflineTTS(voice="rachel")


def test_a_flow_voice_offline_cannot_do_is_ignored() -> None:
    engine = OfflineTTS()
    engine.update_options(voice="rachel")
    assert engine.voice.name == "en-us"
    engine.update_options(voice="en-us+f3")
    assert engine.voice.name == "en-us+f3"
