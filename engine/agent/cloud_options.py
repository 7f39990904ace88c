"""The cloud speech engines' latency settings, read from the environment.

Deepgram (``VOXFLOW_STT=deepgram``):

- ``VOXFLOW_DEEPGRAM_MODEL``: the model (default ``nova-3``). Expected phrases
  reach nova-3 models as ``keyterm`` and older ones (``nova-2-phonecall``...)
  as ``keywords``.
- The turn options (``endpointing``, ``keyterm``/``keywords``,
  ``interim_results``, ``vad_events``, ``utterance_end_ms``) follow each
  listen node: :func:`deepgram_turn_options` and engine.agent.cloud_turns.

ElevenLabs (``VOXFLOW_TTS=elevenlabs``), the stream-input WebSocket:

- ``VOXFLOW_ELEVENLABS_MODEL``: default ``eleven_flash_v2_5`` (ElevenLabs'
  lowest-latency model).
- ``VOXFLOW_ELEVENLABS_FORMAT``: the audio format asked for; default
  ``pcm_16000`` (raw PCM at the agent's line rate: nothing to decode or
  resample); ``pcm_8000`` for a narrowband leg. Only ``pcm_*``: the livekit
  plugin cannot decode ElevenLabs' µ-law (``ulaw_8000``).
- ``VOXFLOW_ELEVENLABS_AUTO_MODE``: ``on`` (default) or ``off``. On, each
  sentence is sent with a flush and ElevenLabs generates it at once, with no
  buffering: a prompt's first audio comes from its first sentence.
- ``VOXFLOW_ELEVENLABS_CHUNK_SCHEDULE``: with auto mode off, how many
  characters ElevenLabs buffers before each generation (``generation_config.
  chunk_length_schedule``, each 50-500; ElevenLabs' default is 120,160,250,290).
- ``VOXFLOW_ELEVENLABS_LATENCY``: ``optimize_streaming_latency`` (0-4) for the
  HTTP streaming path, the only one that still takes it; default 3 (the most
  optimisation that keeps text normalisation).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.core.errors import VoxflowError

DEEPGRAM_MODEL_ENV = "VOXFLOW_DEEPGRAM_MODEL"
ELEVENLABS_MODEL_ENV = "VOXFLOW_ELEVENLABS_MODEL"
ELEVENLABS_FORMAT_ENV = "VOXFLOW_ELEVENLABS_FORMAT"
ELEVENLABS_AUTO_MODE_ENV = "VOXFLOW_ELEVENLABS_AUTO_MODE"
ELEVENLABS_SCHEDULE_ENV = "VOXFLOW_ELEVENLABS_CHUNK_SCHEDULE"
ELEVENLABS_LATENCY_ENV = "VOXFLOW_ELEVENLABS_LATENCY"
PCM_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
KEYWORD_BOOST = 2.0  # Deepgram keywords' intensifier for an expected phrase's words
UTTERANCE_END_MIN_MS = 1000  # Deepgram refuses less
_TRUE = ("1", "true", "on", "yes")
_FALSE = ("0", "false", "off", "no")


@dataclass(frozen=True)
class DeepgramSettings:
    model: str = "nova-3"

    @property
    def keyterm_model(self) -> bool:
        """Whether the model takes ``keyterm`` (nova-3) rather than ``keywords``."""
        return self.model.startswith("nova-3")


@dataclass(frozen=True)
class ElevenLabsSettings:
    model: str = "eleven_flash_v2_5"
    output_format: str = "pcm_16000"
    auto_mode: bool = True
    chunk_length_schedule: tuple[int, ...] | None = None
    streaming_latency: int = 3

    @property
    def sample_rate(self) -> int:
        return int(self.output_format.split("_")[1])

    def plugin_options(self) -> dict[str, Any]:
        """The livekit-plugins-elevenlabs TTS arguments these settings make."""
        options: dict[str, Any] = {
            "model": self.model,
            "encoding": self.output_format,
            "auto_mode": self.auto_mode,
            "streaming_latency": self.streaming_latency,
        }
        if self.chunk_length_schedule:
            options["chunk_length_schedule"] = list(self.chunk_length_schedule)
        return options


def deepgram_from_env(env: Mapping[str, str] | None = None) -> DeepgramSettings:
    env = os.environ if env is None else env
    model = env.get(DEEPGRAM_MODEL_ENV, "").strip()
    return DeepgramSettings(model=model) if model else DeepgramSettings()


def elevenlabs_from_env(env: Mapping[str, str] | None = None) -> ElevenLabsSettings:
    """ElevenLabs' settings; a VoxflowError naming the variable for a bad value."""
    env = os.environ if env is None else env
    default = ElevenLabsSettings()

    def get(name: str) -> str:
        return env.get(name, "").strip()

    output_format = get(ELEVENLABS_FORMAT_ENV).lower() or default.output_format
    kind, _, rate = output_format.partition("_")
    if kind != "pcm" or not rate.isdigit() or int(rate) not in PCM_RATES:
        choices = ", ".join(f"pcm_{r}" for r in PCM_RATES)
        raise VoxflowError(
            f"{ELEVENLABS_FORMAT_ENV}={output_format} is not an audio format voxflow can play; "
            f"use one of {choices} (pcm_16000 or pcm_8000 for a phone line)"
        )
    return ElevenLabsSettings(
        model=get(ELEVENLABS_MODEL_ENV) or default.model,
        output_format=output_format,
        auto_mode=_flag(get(ELEVENLABS_AUTO_MODE_ENV), ELEVENLABS_AUTO_MODE_ENV, default.auto_mode),
        chunk_length_schedule=_schedule(get(ELEVENLABS_SCHEDULE_ENV)),
        streaming_latency=_latency(get(ELEVENLABS_LATENCY_ENV), default.streaming_latency),
    )


def deepgram_turn_options(
    settings: DeepgramSettings,
    phrases: Sequence[str],
    end_silence_ms: int,
    *,
    short_silence_ms: int | None,
) -> dict[str, Any]:
    """Deepgram's live options for one listen (the plugin's ``update_options`` names).

    ``endpointing`` is the silence after which Deepgram sends ``speech_final``:
    the node's whole ``end_silence_ms``, or ``short_silence_ms`` where phrases
    are expected and the early end of turn is on (engine.agent.cloud_turns
    then ends the turn at once on a whole expected phrase, and otherwise waits
    out the rest of the silence itself). ``utterance_end_ms`` is the backstop
    when a noisy line never gives ``speech_final``.
    """
    early = bool(phrases) and short_silence_ms is not None
    endpointing = min(short_silence_ms, end_silence_ms) if early and short_silence_ms else end_silence_ms
    options: dict[str, Any] = {
        "endpointing_ms": int(endpointing),
        "interim_results": True,
        "vad_events": True,
        "utterance_end_ms": max(UTTERANCE_END_MIN_MS, int(end_silence_ms)),
    }
    if settings.keyterm_model:
        options["keyterm"] = list(phrases)
    else:
        words = dict.fromkeys(word for phrase in phrases for word in phrase.lower().split())
        options["keywords"] = [(word, KEYWORD_BOOST) for word in words]
    return options


def _flag(value: str, name: str, default: bool) -> bool:
    if not value:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise VoxflowError(f"{name}={value} should be on or off")


def _schedule(value: str) -> tuple[int, ...] | None:
    if not value:
        return None
    try:
        numbers = tuple(int(part) for part in value.replace(" ", "").split(",") if part)
    except ValueError:
        numbers = ()
    if not numbers or len(numbers) > 4 or any(not 50 <= n <= 500 for n in numbers):
        raise VoxflowError(
            f"{ELEVENLABS_SCHEDULE_ENV}={value} should be one to four character counts "
            "between 50 and 500, separated by commas, e.g. 50,120,160,250"
        )
    return numbers


def _latency(value: str, default: int) -> int:
    if not value:
        return default
    if value.isdigit() and 0 <= int(value) <= 4:
        return int(value)
    raise VoxflowError(f"{ELEVENLABS_LATENCY_ENV}={value} should be a number from 0 to 4")
