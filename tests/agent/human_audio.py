"""Recordings of real people (``../shared/audio/human/``, its README says what each one
says): the pocketsphinx test recordings, which are not ours to ship in the repository."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.agent import wav

HUMAN_AUDIO = Path(__file__).resolve().parents[3] / "shared" / "audio" / "human"
RATE = 16000
# file → what is said (../shared/audio/README.md)
SAID = {
    "cards-001": "ten of clubs",
    "cards-002": "four queen of clubs",
    "cards-003": "seven of clubs",
    "cards-004": "five five",
    "cards-005": "eight of spades four of clubs seven of hearts",
    "goforward": "go forward ten meters",
    "librivox-0930": "he might even have been made amiable himself",
}


def human(name: str) -> np.ndarray:
    """The recording ``name`` (e.g. "goforward") as 16 kHz int16 samples."""
    path = HUMAN_AUDIO / f"{name}.wav"
    if not path.is_file():
        pytest.fail(f"the human recordings are missing: {path} (see ../shared/audio/README.md)")
    return np.frombuffer(wav.read_pcm(path, RATE), dtype=np.int16)
