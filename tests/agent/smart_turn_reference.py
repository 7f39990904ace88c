"""Reference features for engine.agent.smart_turn, made once with transformers.

The inputs are made here from formulas (numpy only), so the test and this script
build the same samples; the expected values come from the reference
implementation, ``transformers.WhisperFeatureExtractor(chunk_length=8)``, not from
ours. They were written to ``data/smart_turn_features.npz`` by

    pip install 'transformers==5.25.0' numpy   # no torch needed: its numpy path
    PYTHONPATH=. python tests/agent/smart_turn_reference.py

(transformers 5.25.0, numpy 2.4; every 10th of the 800 frames is kept, to keep the
file small.)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

RATE = 16000
FIXTURE = Path(__file__).resolve().parent / "data" / "smart_turn_features.npz"
FRAMES = slice(None, None, 10)  # the frames kept: 0, 10, ..., 790


def _voice(seconds: float, pitch: float, syllables: float) -> np.ndarray:
    """A voiced sound: harmonics of a gliding pitch, opened and closed like syllables."""
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = pitch * (1.0 + 0.1 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    tone = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(np.pi * syllables * t), 0.0, None) ** 2
    return 0.2 * tone * envelope


def inputs() -> dict[str, np.ndarray]:
    """float32 audio in [-1, 1]: shorter than 8 s (padded), longer (cut), and a quiet tail."""
    hiss = 1e-3 * np.sin(np.arange(RATE) * 1.2345) * np.cos(np.arange(RATE) * 0.0271)
    short = np.concatenate([np.zeros(RATE // 4), _voice(2.5, 140.0, 3.0), np.zeros(RATE // 5)])
    long = np.concatenate([_voice(5.0, 210.0, 4.0), np.zeros(RATE // 2), _voice(4.5, 110.0, 2.5)])
    quiet = np.concatenate([_voice(1.2, 180.0, 2.0), hiss])
    return {name: x.astype(np.float32) for name, x in (("short", short), ("long", long), ("quiet", quiet))}


def main() -> int:
    from transformers import WhisperFeatureExtractor

    extractor = WhisperFeatureExtractor(chunk_length=8)
    expected = {}
    for name, audio in inputs().items():
        window = (
            audio[-8 * RATE :]
            if audio.size >= 8 * RATE
            else np.concatenate([np.zeros(8 * RATE - audio.size, np.float32), audio])
        )
        features = extractor(
            window,
            sampling_rate=RATE,
            return_tensors="np",
            padding="max_length",
            max_length=8 * RATE,
            truncation=True,
            do_normalize=True,
        ).input_features[0]
        expected[name] = features[:, FRAMES].astype(np.float32)
        print(name, features.shape, float(features.min()), float(features.max()))
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(FIXTURE, **expected)
    print(f"wrote {FIXTURE} ({FIXTURE.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
