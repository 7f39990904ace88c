"""Audio the agent plays rather than synthesises: the beep, and files named by ``play``.

A ``play`` command names ``"beep"``, a WAV file (a path or ``file://`` URL) or an
``http(s)://`` URL of a WAV file. Clips become 20 ms frames at the session's rate,
ready for ``session.say(..., audio=frames)``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import unquote, urlparse

import aiohttp
import numpy as np
from livekit import rtc

from engine.agent import wav
from engine.core.errors import VoxflowError

BEEP = "beep"
_BEEP_HZ = 1000.0
_BEEP_SECONDS = 0.35
_FRAME_MS = 20
_FETCH_TIMEOUT = 10.0


def beep_pcm(sample_rate: int) -> bytes:
    """The record beep: a 1 kHz tone with soft edges (no click), at -12 dBFS."""
    count = int(sample_rate * _BEEP_SECONDS)
    t = np.arange(count) / sample_rate
    envelope = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)
    tone = 0.25 * np.sin(2 * np.pi * _BEEP_HZ * t) * envelope
    return (tone * 32767).astype(np.int16).tobytes()


async def load_clip(audio: str, sample_rate: int, session: aiohttp.ClientSession | None = None) -> bytes:
    """16-bit mono PCM at ``sample_rate`` for what a play command names."""
    if audio.strip().lower() == BEEP:
        return beep_pcm(sample_rate)
    parsed = urlparse(audio)
    if parsed.scheme in ("http", "https"):
        return wav.decode_pcm(await _fetch(audio, session), sample_rate, audio)
    path = Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(audio)
    if not path.is_file():
        raise VoxflowError(f"cannot play '{audio}': no such audio file")
    return wav.read_pcm(path, sample_rate)


async def frames(pcm: bytes, sample_rate: int) -> AsyncIterator[rtc.AudioFrame]:
    """``pcm`` as 20 ms frames (the last one padded with silence)."""
    size = sample_rate * _FRAME_MS // 1000 * 2
    for start in range(0, len(pcm), size):
        chunk = pcm[start : start + size]
        chunk += bytes(size - len(chunk))
        yield rtc.AudioFrame(chunk, sample_rate, 1, size // 2)


async def _fetch(url: str, session: aiohttp.ClientSession | None) -> bytes:
    own = session is None
    client = session or aiohttp.ClientSession()
    try:
        async with client.get(url, timeout=aiohttp.ClientTimeout(total=_FETCH_TIMEOUT)) as response:
            if response.status != 200:
                raise VoxflowError(f"cannot play '{url}': the server answered {response.status}")
            return await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise VoxflowError(f"cannot play '{url}': {exc or type(exc).__name__}") from exc
    finally:
        if own:
            await client.close()
