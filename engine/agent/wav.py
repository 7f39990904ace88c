"""WAV files and the few measurements the harness makes on audio.

16-bit mono PCM throughout, as on a phone line. ``sound_spans`` finds where
there is sound (RMS over 10 ms windows above a level), which is how tests
assert from a recording that a prompt played, or stopped.
"""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np
from livekit import rtc

from engine.core.errors import VoxflowError

WINDOW_SECONDS = 0.01
SOUND_DBFS = -45.0  # an espeak voice is around -20 dBFS; a quiet line below -60


def read_pcm(path: Path, sample_rate: int) -> bytes:
    """A WAV file's audio as 16-bit mono PCM at ``sample_rate``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise VoxflowError(f"cannot read the audio file {path}: {exc.strerror or exc}") from exc
    return decode_pcm(data, sample_rate, str(path))


def decode_pcm(data: bytes, sample_rate: int, name: str = "the audio") -> bytes:
    """WAV file contents as 16-bit mono PCM at ``sample_rate``; ``name`` is for errors."""
    try:
        with wave.open(io.BytesIO(data), "rb") as handle:
            channels, width, rate = handle.getnchannels(), handle.getsampwidth(), handle.getframerate()
            frames = handle.readframes(handle.getnframes())
    except (wave.Error, EOFError) as exc:
        raise VoxflowError(f"{name} is not a WAV file voxflow can read ({exc}); use 16-bit PCM WAV") from exc
    if width != 2:
        raise VoxflowError(
            f"{name} is {width * 8}-bit audio; voxflow reads 16-bit PCM WAV files "
            "(convert it with: sox in.wav -b 16 out.wav)"
        )
    samples = np.frombuffer(frames, dtype=np.int16)
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1).astype(np.int16)
    return resample(samples.tobytes(), rate, sample_rate)


def resample(pcm: bytes, source_rate: int, target_rate: int) -> bytes:
    if source_rate == target_rate or not pcm:
        return pcm
    resampler = rtc.AudioResampler(
        source_rate, target_rate, num_channels=1, quality=rtc.AudioResamplerQuality.HIGH
    )
    frames = resampler.push(rtc.AudioFrame(pcm, source_rate, 1, len(pcm) // 2)) + resampler.flush()
    return b"".join(bytes(frame.data) for frame in frames)


def write(path: Path, samples: np.ndarray | bytes, sample_rate: int) -> None:
    """Write 16-bit mono samples to a WAV file."""
    data = samples if isinstance(samples, bytes) else samples.astype(np.int16).tobytes()
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(sample_rate)
        handle.writeframes(data)


def window_levels(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """RMS level in dBFS of each 10 ms window."""
    size = int(sample_rate * WINDOW_SECONDS)
    count = len(samples) // size
    if count == 0:
        return np.zeros(0)
    windows = samples[: count * size].astype(np.float64).reshape(count, size)
    rms = np.sqrt((windows**2).mean(axis=1))
    return 20 * np.log10(np.maximum(rms, 1e-9) / 32768.0)


def sound_spans(
    samples: np.ndarray, sample_rate: int, *, level: float = SOUND_DBFS, gap: float = 0.25
) -> list[tuple[float, float]]:
    """(start, end) seconds of stretches with sound; gaps shorter than ``gap`` are bridged
    (the pauses between words of one sentence)."""
    loud = window_levels(samples, sample_rate) > level
    spans: list[tuple[float, float]] = []
    for index in np.flatnonzero(loud):
        start, end = index * WINDOW_SECONDS, (index + 1) * WINDOW_SECONDS
        if spans and start - spans[-1][1] <= gap:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    return spans


def sound_seconds(samples: np.ndarray, sample_rate: int, *, level: float = SOUND_DBFS) -> float:
    """How many seconds of ``samples`` have sound."""
    return float((window_levels(samples, sample_rate) > level).sum() * WINDOW_SECONDS)
