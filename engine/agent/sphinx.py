"""pocketsphinx recognition of one buffered utterance, with a confidence in 0..1.

Two decoders share the en-US acoustic model that ships in the pocketsphinx
wheel: one decodes against the grammar of the expected phrases, the other
with the general language model (free-form, and the yardstick for the first).
They are loaded once per process (about 2.5 s) and used under one lock, so
recognitions are serialised; each takes 30 ms (grammar) + ~100-200 ms
(language model) for a short answer on this machine.

pocketsphinx holds Python's GIL while it decodes, so decoding in a thread of
the agent's process would stall its event loop (the caller's audio, VAD, the
agent's playout) for the whole decode. :func:`recognize_elsewhere` therefore
decodes in one recogniser process beside it (:func:`prewarm_process` starts
it and loads the models there); :func:`engine` is the in-process engine that
process uses, also usable directly (tests, tools).

How the confidence is computed
------------------------------
With expected phrases:

1. The grammar pass must end on a whole phrase. pocketsphinx returns the best
   partial path when no phrase fits ("my" for "my balance"'s grammar, or an
   empty string); that is a rejection: confidence 0, and the transcript is the
   language model's free-form guess (for logs and no_match handling).
2. ``posterior``: the smallest lattice posterior probability of the phrase's
   words (pocketsphinx's forward-backward over the word lattice). It says how
   sure the decoder is *between the phrases*, not whether the caller said one.
3. ``fit``: whether the phrase explains the audio as well as free speech does.
   Both passes score every senone (``compallsen``), so their path scores are
   comparable; ``margin`` = (grammar score − language-model score) per 1000
   frames, in natural-log units. Speech that is a phrase scores within about
   ±0.8 of free speech; other words score below −1.3 (espeak voices, this
   model). ``fit = 1 / (1 + exp(-(margin + 1.0) / 0.3))``: 0.5 at −1.0.
4. ``confidence = posterior × fit`` (× 0.5 instead of fit in the rare case
   where the free-form pass finds no path to compare with).

Without expected phrases the transcript is the language model's and the
confidence is its posterior (step 2 over its words), which is often low:
pocketsphinx is weak at free-form speech.

Words that sound alike ("page" and "agent") can still be taken for a phrase
with a high confidence: a grammar recogniser chooses among what it was told.

Silence beyond 0.3 s is trimmed off both ends (it costs decoding time and
tells nothing); then the audio is padded with 0.3 s and given a low noise floor (σ = 30, about −60
dBFS, from a fixed seed so the result is repeatable): pocketsphinx's
features misbehave on exact digital silence, and a phrase that starts on the
first sample is often cut.
"""

from __future__ import annotations

import asyncio
import logging
import math
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import numpy as np

from engine.agent.grammar import Grammar, build_grammar
from engine.core.errors import VoxflowError

SAMPLE_RATE = 16000
_PAD_SECONDS = 0.3
_NOISE_FLOOR = 30.0
_TRIM_LEVEL = 300  # peak amplitude of a 10 ms window that counts as sound (about -40 dBFS)
_NOISE_SEED = 20240601
_FIT_MIDPOINT = -1.0
_FIT_SCALE = 0.3
# Words in a segmentation that are not words: sentence marks, silence, noises.
_NON_WORDS = ("<", "[", "+")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recognition:
    """What was heard. ``phrase`` is the expected phrase it matched, as the flow
    wrote it, or None; ``margin`` is the grammar-vs-free-speech score (see the
    module docstring), None when there was no grammar pass to compare."""

    transcript: str
    confidence: float
    phrase: str | None = None
    posterior: float = 0.0
    margin: float | None = None


def fit_from_margin(margin: float) -> float:
    """Map a grammar-vs-free-speech margin to 0..1 (0.5 at the midpoint)."""
    return 1.0 / (1.0 + math.exp(-(margin - _FIT_MIDPOINT) / _FIT_SCALE))


class SphinxEngine:
    """The two decoders and the lock that serialises them."""

    def __init__(self) -> None:
        try:
            from pocketsphinx import Decoder
        except ImportError as exc:  # pragma: no cover - a dependency of voxflow
            raise VoxflowError(
                "the offline speech recogniser needs the 'pocketsphinx' package; "
                "install it with: pip install pocketsphinx"
            ) from exc
        common = {"samprate": SAMPLE_RATE, "loglevel": "FATAL", "compallsen": True}
        # The grammar decoder needs no language model: lm=None skips loading it.
        self._grammar_decoder = Decoder(lm=None, bestpath=True, **common)
        # Narrow beams keep the free-form pass near 200 ms for a short answer; it
        # only has to be good enough to score the audio, and to guess when nothing fits.
        self._lm_decoder = Decoder(
            bestpath=True,
            beam=1e-30,
            wbeam=1e-20,
            pbeam=1e-30,
            maxwpf=5,
            maxhmmpf=3000,
            fwdflat=False,
            **common,
        )
        self._lock = threading.Lock()
        self._grammars: dict[str, Grammar] = {}

    def known_word(self, word: str) -> bool:
        return self._grammar_decoder.lookup_word(word) is not None

    def grammar(self, phrases: tuple[str, ...]) -> Grammar | None:
        """The grammar for ``phrases`` (None when no phrase has known words)."""
        with self._lock:
            grammar = build_grammar(phrases, self.known_word)
            if grammar is None:
                return None
            if grammar.skipped:
                log.warning(
                    "offline speech recognition ignores expected phrases with words it cannot pronounce: %s",
                    ", ".join(repr(p) for p in grammar.skipped),
                )
            if grammar.key not in self._grammars:
                self._grammar_decoder.add_jsgf_string(grammar.key, grammar.jsgf())
                self._grammars[grammar.key] = grammar
            return grammar

    def recognize(self, pcm: bytes, grammar: Grammar | None) -> Recognition:
        """Recognise 16 kHz mono 16-bit ``pcm``. Blocking; call it from a thread."""
        audio = _prepare(pcm)
        with self._lock:
            free = _decode(self._lm_decoder, audio)
            if grammar is None:
                text = " ".join(free.words)
                return Recognition(text, free.posterior if free.words else 0.0, None, free.posterior)
            self._grammar_decoder.activate_search(grammar.key)
            constrained = _decode(self._grammar_decoder, audio)
        phrase = grammar.phrase_for(constrained.words) if constrained.words else None
        if phrase is None:
            return Recognition(" ".join(free.words), 0.0)
        if math.isinf(free.log_score):
            # The free-form pass found no path at all: no yardstick, so half the posterior.
            return Recognition(phrase, round(constrained.posterior * 0.5, 4), phrase, constrained.posterior)
        margin = (constrained.log_score - free.log_score) / max(constrained.frames, 1) * 1000
        confidence = constrained.posterior * fit_from_margin(margin)
        return Recognition(phrase, round(confidence, 4), phrase, constrained.posterior, margin)


@dataclass(frozen=True)
class _Decoded:
    words: tuple[str, ...]
    posterior: float
    log_score: float
    frames: int


def _trim(samples: np.ndarray) -> np.ndarray:
    """Cut silence beyond ``_PAD_SECONDS`` off both ends: the VAD hands over its
    prefix padding and end silence (about a second), and decoding silence
    costs as much time as decoding words."""
    window = SAMPLE_RATE // 100
    count = len(samples) // window
    if count == 0:
        return samples
    levels = np.abs(samples[: count * window]).reshape(count, window).max(axis=1)
    loud = np.flatnonzero(levels > _TRIM_LEVEL)
    if len(loud) == 0:
        return samples
    keep = int(_PAD_SECONDS * 100)
    first, last = max(loud[0] - keep, 0), min(loud[-1] + 1 + keep, count)
    return samples[first * window : last * window]


def _prepare(pcm: bytes) -> bytes:
    samples = _trim(np.frombuffer(pcm, dtype=np.int16)).astype(np.float64)
    pad = np.zeros(int(SAMPLE_RATE * _PAD_SECONDS))
    padded = np.concatenate([pad, samples, pad])
    padded += np.random.default_rng(_NOISE_SEED).normal(0.0, _NOISE_FLOOR, len(padded))
    return np.clip(padded, -32768, 32767).astype(np.int16).tobytes()


def _decode(decoder: object, audio: bytes) -> _Decoded:
    d = decoder  # pocketsphinx has no type hints; keep the Any in one place
    d.start_utt()  # type: ignore[attr-defined]
    d.process_raw(audio, full_utt=True)  # type: ignore[attr-defined]
    d.end_utt()  # type: ignore[attr-defined]
    hyp = d.hyp()  # type: ignore[attr-defined]
    if hyp is None:
        return _Decoded((), 0.0, -math.inf, 0)
    words: list[str] = []
    posterior = 1.0
    for seg in d.seg():  # type: ignore[attr-defined]
        if seg.word.startswith(_NON_WORDS):
            continue
        words.append(seg.word.split("(")[0])  # "representative(2)": an alternative pronunciation
        posterior = min(posterior, float(seg.prob))
    # hyp.score is exp(path score); the path score is normalised per frame by the
    # best senone, so it stays far from underflow for any answer a caller gives.
    log_score = math.log(hyp.score) if hyp.score > 0 else -math.inf
    return _Decoded(tuple(words), posterior if words else 0.0, log_score, d.n_frames())  # type: ignore[attr-defined]


_engine: SphinxEngine | None = None
_engine_lock = threading.Lock()


def engine() -> SphinxEngine:
    """The process's engine, loaded on first use (blocking, ~2.5 s)."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = SphinxEngine()
        return _engine


# ---- the recogniser process -------------------------------------------------------

_pool: ProcessPoolExecutor | None = None


def _process_pool() -> ProcessPoolExecutor:
    global _pool
    with _engine_lock:
        if _pool is None:
            # spawn, not fork: the agent's process has threads (livekit, onnxruntime).
            _pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=_load_models
            )
        return _pool


def _load_models() -> None:
    engine()


def _recognize_phrases(pcm: bytes, phrases: tuple[str, ...]) -> Recognition:
    """In the recogniser process: ``pcm`` against ``phrases`` (free-form if none)."""
    sphinx = engine()
    grammar = sphinx.grammar(phrases) if phrases else None
    return sphinx.recognize(pcm, grammar)


def _ready() -> bool:
    return True


def prewarm_process() -> None:
    """Start the recogniser process and load its models (blocking, a few seconds)."""
    _process_pool().submit(_ready).result()


async def recognize_elsewhere(pcm: bytes, phrases: tuple[str, ...]) -> Recognition:
    """Recognise 16 kHz mono 16-bit ``pcm`` in the recogniser process (started if it
    is not running; started again if it died)."""
    global _pool
    loop = asyncio.get_running_loop()
    for attempt in range(2):
        try:
            pool = _process_pool()
        except (AssertionError, OSError) as error:  # e.g. a daemonic process: no children
            log.warning("recognising in this process (no recogniser process: %s)", error)
            return await asyncio.to_thread(_recognize_phrases, pcm, phrases)
        try:
            return await loop.run_in_executor(pool, _recognize_phrases, pcm, phrases)
        except BrokenProcessPool:
            with _engine_lock:
                if _pool is pool:
                    _pool = None
            if attempt:
                raise VoxflowError(
                    "the offline speech recogniser's process stopped; see the log above for why"
                ) from None
    raise AssertionError("unreachable")
