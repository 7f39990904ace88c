"""Smart Turn v3.2: a learned end-of-turn model beside VAD, offline, on onnxruntime.

The model (Daily's Smart Turn v3.2, BSD-2-Clause, "Copyright (c) 2024–2026,
Daily"; the file ships inside the pipecat-ai wheel, see
engine.agent.turn_model_file) hears the last 8 s of a caller's turn and
answers the probability that the caller has finished. :class:`SmartTurn` is it
as a :class:`~engine.agent.turns.TurnModel`: ``finished(pcm16k) -> float``.

Its input is Whisper's log-mel spectrogram, computed here with numpy alone
(:func:`log_mel`): what ``transformers.WhisperFeatureExtractor(chunk_length=8)``
gives with ``padding="max_length", max_length=128000, truncation=True,
do_normalize=True`` (tests/agent/data/ holds reference values made with it):

* the last 8 s of 16 kHz audio (128,000 samples), zero-padded at the start;
* zero mean and unit variance, ``(x - mean) / sqrt(var + 1e-7)``;
* STFT: n_fft 400 (25 ms), hop 160 (10 ms), periodic Hann window, centred with a
  reflect pad of 200 → 801 frames, power spectrum;
* 80 Slaney mel filters over 0–8 kHz with Slaney area normalisation;
* ``log10(max(mel, 1e-10))``, the last frame dropped (→ 80 × 800), clamped to
  the global maximum − 8, then ``(x + 4) / 4``.

The graph's output is named ``logits`` but ends in a sigmoid: it is the
probability (quantised: 256 values from 0.0047 to 0.9909). One inference takes
about 31 ms on one core (features 5 ms); the session uses one intra-op thread,
and callers run it off the event loop (engine.agent.turns does, in a thread).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
WINDOW_SECONDS = 8
N_SAMPLES = WINDOW_SECONDS * SAMPLE_RATE  # 128000
N_FFT = 400
HOP = 160
N_MELS = 80
N_FRAMES = N_SAMPLES // HOP  # 800


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    logstep = 27.0 / np.log(6.4)
    return np.where(hz >= 1000.0, 15.0 + np.log(np.maximum(hz, 1e-12) / 1000.0) * logstep, 3.0 * hz / 200.0)


def _mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    logstep = np.log(6.4) / 27.0
    return np.where(mel >= 15.0, 1000.0 * np.exp(logstep * (mel - 15.0)), 200.0 * mel / 3.0)


def mel_filters() -> np.ndarray:
    """The (201, 80) Slaney mel filter bank over 0–8 kHz, area-normalised (as
    transformers' ``mel_filter_bank(norm="slaney", mel_scale="slaney")``)."""
    mel_points = np.linspace(_hz_to_mel(0.0), _hz_to_mel(SAMPLE_RATE / 2), N_MELS + 2)
    hz_points = _mel_to_hz(mel_points)
    fft_freqs = np.linspace(0, SAMPLE_RATE // 2, N_FFT // 2 + 1)
    widths = np.diff(hz_points)
    slopes = hz_points[None, :] - fft_freqs[:, None]
    down = -slopes[:, :-2] / widths[:-1]
    up = slopes[:, 2:] / widths[1:]
    bank = np.maximum(0.0, np.minimum(down, up))
    bank *= (2.0 / (hz_points[2:] - hz_points[:-2]))[None, :]
    return bank


_HANN = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic
_BANK_T = np.ascontiguousarray(mel_filters().T)  # (80, 201)


def window(pcm16k: np.ndarray) -> np.ndarray:
    """The model's 8 s: the last 128,000 samples, or zeros before shorter audio."""
    samples = np.asarray(pcm16k, dtype=np.float32).reshape(-1)
    if samples.size >= N_SAMPLES:
        return samples[-N_SAMPLES:]
    return np.concatenate([np.zeros(N_SAMPLES - samples.size, np.float32), samples])


def log_mel(audio: np.ndarray) -> np.ndarray:
    """(80, 800) float32 features of exactly 8 s of 16 kHz audio in [-1, 1]."""
    x = np.asarray(audio, dtype=np.float32).reshape(-1)
    if x.size != N_SAMPLES:
        raise ValueError(f"log_mel takes {N_SAMPLES} samples (8 s at 16 kHz), not {x.size}")
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    padded = np.pad(x.astype(np.float64), N_FFT // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]  # (801, 400)
    spectrum = np.fft.rfft(frames * _HANN, axis=-1)
    power = spectrum.real**2 + spectrum.imag**2  # (801, 201)
    mel = _BANK_T @ power.T  # (80, 801)
    logspec = np.log10(np.maximum(mel, 1e-10))[:, :-1]
    logspec = np.maximum(logspec, logspec.max() - 8.0)
    return ((logspec + 4.0) / 4.0).astype(np.float32)


def features(pcm16k: bytes | np.ndarray) -> np.ndarray:
    """The model's input for a turn: 16-bit PCM bytes, int16 samples or floats in [-1, 1]."""
    if isinstance(pcm16k, (bytes, bytearray, memoryview)):
        samples = np.frombuffer(pcm16k, dtype=np.int16).astype(np.float32) / 32768.0
    else:
        samples = np.asarray(pcm16k)
        if samples.dtype == np.int16:
            samples = samples.astype(np.float32) / 32768.0
    return log_mel(window(samples))


class SmartTurn:
    """The model, loaded once and shared by every call of the process (onnxruntime's
    ``run`` may be called from several threads at once)."""

    def __init__(self, path: Path, *, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.path = path
        self._session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        inputs = self._session.get_inputs()
        if len(inputs) != 1 or list(inputs[0].shape)[1:] != [N_MELS, N_FRAMES]:
            raise ValueError(f"{path} is not a Smart Turn v3 model (its input is {inputs[0].shape})")
        self._input = inputs[0].name
        self.probability(np.zeros((N_MELS, N_FRAMES), np.float32))  # the first run is slow

    def probability(self, feats: np.ndarray) -> float:
        """P(the turn is finished) from :func:`features`."""
        out = self._session.run(None, {self._input: feats[None, :, :]})[0]
        return float(out[0, 0])  # "logits", but after the graph's sigmoid

    def finished(self, pcm16k: bytes) -> float:
        """P(the caller has finished) for the turn's audio so far, trailing silence
        included (16 kHz mono 16-bit PCM). Blocking: call it from a thread."""
        return self.probability(features(pcm16k))


_loaded: dict[Path, SmartTurn] = {}
_lock = threading.Lock()


def load(path: Path) -> SmartTurn:
    """The model at ``path``, loaded once per process."""
    with _lock:
        model = _loaded.get(path)
        if model is None:
            model = _loaded[path] = SmartTurn(path)
        return model
