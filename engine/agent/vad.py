"""Silero VAD, loaded once per process and shared by every call.

Loading the ONNX model is the slow part (it is what livekit's prewarm is
for); the options (how much silence ends an answer, how sure a frame must be
to count as speech) belong to each call. So one ONNX session is loaded once
and each call gets its own ``silero.VAD`` over it with its own options.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass

from livekit.agents import vad as agents_vad

# livekit plugins register themselves on import and refuse to unless on the main
# thread, so it is imported here, not lazily in prewarm() (which may run in a thread).
from livekit.plugins import silero

_lock = threading.Lock()
_base: agents_vad.VAD | None = None


@dataclass(frozen=True)
class VadOptions:
    """``min_silence``: seconds of silence that end an utterance (a listen node's
    end_silence_ms / 1000). ``min_speech``: seconds of speech before it counts.
    ``activation``: Silero probability above which a window is speech."""

    min_silence: float = 0.55
    min_speech: float = 0.05
    activation: float = 0.5
    prefix_padding: float = 0.5


def prewarm() -> agents_vad.VAD:
    """Load the model now (blocking); later calls return the loaded one."""
    global _base
    with _lock:
        if _base is None:
            _base = silero.VAD.load()
        return _base


def for_call(options: VadOptions = VadOptions()) -> agents_vad.VAD:
    """A VAD with ``options`` over the process's loaded model."""
    base = prewarm()
    assert isinstance(base, silero.VAD)
    # silero.VAD has no public way to share its ONNX session with other options;
    # its constructor takes the session and the options, which is what load() does.
    opts = dataclasses.replace(
        base._opts,
        min_silence_duration=options.min_silence,
        min_speech_duration=options.min_speech,
        activation_threshold=options.activation,
        deactivation_threshold=max(options.activation - 0.15, 0.01),
        prefix_padding_duration=options.prefix_padding,
    )
    return silero.VAD(session=base._onnx_session, opts=opts)
