"""The ``record`` command: keep the caller's audio between the beep and the end.

Frames come from the STT's input (VoxflowAgent.audio_listeners), so what is
recorded is what was recognised. A recording in which the caller never spoke
keeps nothing (url "", duration 0): the plugin side then reports no input.
Files are WAV, written under the agent's recordings folder, and the url on
``record:complete`` is their ``file://`` URL.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from livekit import rtc

from engine.agent import wav


@dataclass
class Recording:
    request_id: str
    call_id: str
    started_at: float = field(default_factory=time.monotonic)
    sample_rate: int = 0
    chunks: list[bytes] = field(default_factory=list)
    heard: bool = False  # the caller spoke during it

    def add(self, frame: rtc.AudioFrame) -> None:
        if self.sample_rate == 0:
            self.sample_rate = frame.sample_rate
        data = bytes(frame.data)
        if frame.num_channels > 1:
            samples = np.frombuffer(data, dtype=np.int16).reshape(-1, frame.num_channels)
            data = samples.mean(axis=1).astype(np.int16).tobytes()
        if frame.sample_rate != self.sample_rate:
            data = wav.resample(data, frame.sample_rate, self.sample_rate)
        self.chunks.append(data)

    @property
    def seconds(self) -> float:
        if not self.sample_rate:
            return 0.0
        return sum(len(chunk) for chunk in self.chunks) / 2 / self.sample_rate

    def save(self, folder: Path) -> str:
        """Write the WAV; its file:// URL ("" when the caller never spoke)."""
        if not self.heard or not self.chunks:
            return ""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.call_id}-{uuid.uuid4().hex[:8]}.wav"
        wav.write(path, b"".join(self.chunks), self.sample_rate)
        return path.resolve().as_uri()
