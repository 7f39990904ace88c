"""Caller audio for the agent tests, made with espeak-ng at test time (nothing committed)."""

from __future__ import annotations

import functools

import numpy as np

from engine.agent import espeak, wav

RATE = 16000
VOICES = {
    "default": espeak.Voice(),
    "female-slow": espeak.Voice(name="en-us+f3", rate=150),
    "british": espeak.Voice(name="en"),
}


@functools.lru_cache(maxsize=64)
def _speech(text: str, voice: espeak.Voice) -> bytes:
    pcm, rate = espeak.synthesize_pcm(text, voice)
    return wav.resample(pcm, rate, RATE)


def speech(text: str, voice: str = "default") -> np.ndarray:
    """``text`` spoken by espeak-ng, as 16 kHz int16 samples."""
    return np.frombuffer(_speech(text, VOICES[voice]), dtype=np.int16)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(RATE * seconds), dtype=np.int16)


def onset(samples: np.ndarray) -> float:
    """Seconds from the start of ``samples`` to its first sound."""
    spans = wav.sound_spans(samples, RATE)
    assert spans, "the clip has no sound"
    return spans[0][0]
