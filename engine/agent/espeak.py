"""espeak-ng through ctypes, on the library and data that espeakng-loader ships.

espeak-ng is one global C library: one voice, one rate, one callback for the
whole process. So every synthesis here holds :data:`_LOCK` from setting the
voice to the last sample, and callers run :func:`synthesize` in a thread (it
blocks for as long as the synthesis takes, roughly 1/20 of the audio's
length on this machine).

We use ``AUDIO_OUTPUT_SYNCHRONOUS``: ``espeak_Synth`` returns when the text is
spoken and calls our callback on the calling thread with chunks of
``_CHUNK_MS`` of 16-bit mono PCM as they are made, which lets a caller start
playing before the whole sentence is synthesised.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from dataclasses import dataclass

from engine.core.errors import VoxflowError

# espeak_AUDIO_OUTPUT, espeak_PARAMETER, espeak_POSITION_TYPE and flags from speak_lib.h
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_ESPEAK_RATE = 1
_ESPEAK_VOLUME = 2
_ESPEAK_PITCH = 3
_POS_CHARACTER = 1
_ESPEAK_CHARS_UTF8 = 1
_EE_OK = 0
_CHUNK_MS = 100

# int callback(short *wav, int numsamples, espeak_EVENT *events); returning 1 aborts
_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

_LOCK = threading.Lock()


@dataclass(frozen=True)
class Voice:
    """How espeak speaks: a voice name (``en-us``, ``en``, ``fr``...), words per
    minute, pitch 0..100 and volume 0..200 (100 is normal)."""

    name: str = "en-us"
    rate: int = 175
    pitch: int = 50
    volume: int = 100


class _Library:
    """The loaded library and its sample rate; made once, under the lock."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as exc:  # pragma: no cover - a dependency of voxflow
            raise VoxflowError(
                "the offline text-to-speech engine needs the 'espeakng-loader' package; "
                "install it with: pip install espeakng-loader"
            ) from exc
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.POINTER(ctypes.c_uint),
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        data_dir = espeakng_loader.get_data_path()
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, _CHUNK_MS, data_dir.encode(), 0)
        if rate <= 0:
            raise VoxflowError(
                f"the offline text-to-speech engine (espeak-ng) could not start with its data "
                f"in {data_dir}; reinstall it with: pip install --force-reinstall espeakng-loader"
            )
        self.lib = lib
        self.sample_rate: int = rate
        # The sink of the synthesis in progress; only touched with _LOCK held.
        self.sink: Callable[[bytes], bool] | None = None
        # Keep the ctypes callback object alive as long as the library may call it.
        self.callback = _SynthCallback(self._on_audio)
        lib.espeak_SetSynthCallback(self.callback)
        self.voice: Voice | None = None

    def _on_audio(self, wav: ctypes._Pointer[ctypes.c_short], count: int, _events: int) -> int:
        if count <= 0 or not wav or self.sink is None:
            return 0
        data = ctypes.string_at(wav, count * 2)
        return 0 if self.sink(data) else 1


_library: _Library | None = None


def _load() -> _Library:
    global _library
    if _library is None:
        _library = _Library()
    return _library


def sample_rate() -> int:
    """The rate espeak-ng synthesises at (22050 Hz with the bundled voices)."""
    with _LOCK:
        return _load().sample_rate


def has_voice(name: str) -> bool:
    """Whether espeak-ng knows the voice ``name`` (``en-us``, ``fr``, ``en-us+f3``...)."""
    with _LOCK:
        lib = _load()
        lib.voice = None  # the next synthesis sets its own voice again
        return bool(lib.lib.espeak_SetVoiceByName(name.encode()) == _EE_OK)


def voice_for_language(language: str) -> str:
    """The espeak voice for a BCP 47 language code: ``en-US`` → ``en-us``, ``fr-FR`` → ``fr``."""
    name = language.lower().replace("_", "-")
    if has_voice(name):
        return name
    return name.split("-")[0]


def synthesize(text: str, voice: Voice, on_chunk: Callable[[bytes], bool]) -> None:
    """Speak ``text`` with ``voice``, calling ``on_chunk`` with 16-bit mono PCM
    at :func:`sample_rate` as it is made. ``on_chunk`` returns False to stop early.

    Blocking; run it in a thread. Raises VoxflowError for an unknown voice.
    """
    with _LOCK:
        lib = _load()
        if lib.voice != voice:
            if lib.lib.espeak_SetVoiceByName(voice.name.encode()) != _EE_OK:
                lib.voice = None
                raise VoxflowError(
                    f"the offline text-to-speech engine has no voice {voice.name!r}; "
                    "use a language code espeak-ng knows, such as 'en-us', 'en', 'fr' or 'de'"
                )
            lib.lib.espeak_SetParameter(_ESPEAK_RATE, voice.rate, 0)
            lib.lib.espeak_SetParameter(_ESPEAK_PITCH, voice.pitch, 0)
            lib.lib.espeak_SetParameter(_ESPEAK_VOLUME, voice.volume, 0)
            lib.voice = voice
        encoded = text.encode("utf-8") + b"\0"
        lib.sink = on_chunk
        try:
            lib.lib.espeak_Synth(encoded, len(encoded), 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8, None, None)
        finally:
            lib.sink = None


def synthesize_pcm(text: str, voice: Voice | None = None) -> tuple[bytes, int]:
    """The whole of ``text`` as (16-bit mono PCM, sample rate). Blocking."""
    chunks: list[bytes] = []

    def collect(chunk: bytes) -> bool:
        chunks.append(chunk)
        return True

    synthesize(text, voice or Voice(), collect)
    return b"".join(chunks), sample_rate()
