"""Which speech engines a deployment uses, chosen by configuration.

``VOXFLOW_STT`` is ``offline`` (pocketsphinx, the default), ``deepgram`` or
``openai``; ``VOXFLOW_TTS`` is ``offline`` (espeak-ng, the default),
``elevenlabs`` or ``openai``. A flow may name its own engines, which win over
the environment. The cloud engines are the official livekit plugins from
the ``cloud`` extra (``pip install 'voxflow[cloud]'``) and need their keys:
DEEPGRAM_API_KEY, ELEVEN_API_KEY, OPENAI_API_KEY. Silero VAD is always local
(engine.agent.vad). The cloud engines' latency settings (Deepgram's model,
ElevenLabs' model, audio format and streaming options) come from
engine.agent.cloud_options.

Cloud plugins are imported only when chosen, so a deployment that uses the
offline engines never needs them. livekit plugins must be imported on the
main thread (they register themselves and refuse otherwise): call these
functions from the main thread, as a worker's setup does.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from livekit.agents import stt, tts

from engine.agent import cloud_options
from engine.core.errors import VoxflowError
from engine.core.suggest import as_sentence, did_you_mean, quoted_list

STT_ENV = "VOXFLOW_STT"
TTS_ENV = "VOXFLOW_TTS"
STT_ENGINES = ("offline", "deepgram", "openai")
TTS_ENGINES = ("offline", "elevenlabs", "openai")
_KEYS = {"deepgram": "DEEPGRAM_API_KEY", "elevenlabs": "ELEVEN_API_KEY", "openai": "OPENAI_API_KEY"}
_ELEVENLABS_VOICE_ID = re.compile(r"^[A-Za-z0-9]{20}$")
DEEPGRAM_ENDPOINTING_MS = 800
_PLUGINS = {
    "deepgram": "livekit.plugins.deepgram",
    "elevenlabs": "livekit.plugins.elevenlabs",
    "openai": "livekit.plugins.openai",
}


@dataclass(frozen=True)
class EngineChoice:
    stt: str = "offline"
    tts: str = "offline"


def choose(
    env: Mapping[str, str] | None = None, *, stt_name: str | None = None, tts_name: str | None = None
) -> EngineChoice:
    """The engines to use: the flow's (``stt_name``/``tts_name``), else the
    environment's, else offline. Raises VoxflowError for an unknown name."""
    env = os.environ if env is None else env
    chosen_stt = (stt_name or env.get(STT_ENV) or "offline").strip().lower()
    chosen_tts = (tts_name or env.get(TTS_ENV) or "offline").strip().lower()
    _check(chosen_stt, STT_ENGINES, STT_ENV, "speech recognition")
    _check(chosen_tts, TTS_ENGINES, TTS_ENV, "speech synthesis")
    return EngineChoice(chosen_stt, chosen_tts)


def make_stt(
    name: str,
    *,
    language: str = "en-US",
    env: Mapping[str, str] | None = None,
    base_url: str | None = None,
) -> stt.STT:
    """A speech recogniser. ``base_url`` points a cloud engine at another server
    that speaks its protocol (a local one in tests)."""
    _check(name, STT_ENGINES, STT_ENV, "speech recognition")
    if name == "offline":
        from engine.agent.offline_stt import OfflineSTT

        return OfflineSTT(language=language)
    key = _key(name, STT_ENV, env)
    plugin = _plugin(name)
    extra = {"base_url": base_url} if base_url else {}
    if name == "deepgram":
        # A phone answer ends after about 0.8 s of silence, not Deepgram's default 25 ms;
        # each listen sets its own options between turns (engine.agent.cloud_turns).
        settings = cloud_options.deepgram_from_env(env)
        return plugin.STT(  # type: ignore[no-any-return]
            api_key=key,
            language=language,
            model=settings.model,
            endpointing_ms=DEEPGRAM_ENDPOINTING_MS,
            interim_results=True,
            vad_events=True,
            utterance_end_ms=max(cloud_options.UTTERANCE_END_MIN_MS, DEEPGRAM_ENDPOINTING_MS),
            **extra,
        )
    return plugin.STT(api_key=key, language=language.split("-")[0], **extra)  # type: ignore[no-any-return]


def make_tts(
    name: str,
    *,
    voice: str | None = None,
    language: str = "en-US",
    env: Mapping[str, str] | None = None,
    base_url: str | None = None,
) -> tts.TTS:
    """A speech synthesiser. ``voice`` is the engine's own voice name or id."""
    _check(name, TTS_ENGINES, TTS_ENV, "speech synthesis")
    if name == "offline":
        from engine.agent import espeak
        from engine.agent.offline_tts import OfflineTTS

        return OfflineTTS(voice=voice or espeak.voice_for_language(language))
    key = _key(name, TTS_ENV, env)
    plugin = _plugin(name)
    options: dict[str, Any] = {"api_key": key}
    if base_url:
        options["base_url"] = base_url
    if name == "elevenlabs":
        if voice:
            options["voice_id"] = voice
        options["language"] = language.split("-")[0]
        # Raw PCM at the line's rate (nothing to decode or resample), streamed input with
        # ElevenLabs' latency options (engine.agent.cloud_options).
        options.update(cloud_options.elevenlabs_from_env(env).plugin_options())
    elif voice:
        options["voice"] = voice
    return plugin.TTS(**options)  # type: ignore[no-any-return]


def problems(choice: EngineChoice, env: Mapping[str, str] | None = None) -> list[str]:
    """What is missing for ``choice`` to run (API keys, plugin packages), in plain words."""
    env = os.environ if env is None else env
    found: list[str] = []
    for name, variable in ((choice.stt, STT_ENV), (choice.tts, TTS_ENV)):
        if name == "offline":
            continue
        key_name = _KEYS[name]
        message = f"{key_name}: the {name} API key ({variable}={name})"
        if not env.get(key_name, "").strip() and message not in found:
            found.append(message)
        if importlib.util.find_spec(_PLUGINS[name]) is None:
            found.append(f"the package {_PLUGINS[name].replace('.', '-')} (pip install 'voxflow[cloud]')")
    if choice.tts == "elevenlabs":
        try:
            cloud_options.elevenlabs_from_env(env)
        except VoxflowError as error:
            found.append(error.message)
    return found


def import_plugins(choice: EngineChoice) -> None:
    """Import the chosen cloud plugins now: livekit plugins register themselves on
    import and only on the main thread, so a worker does this before its jobs start."""
    for name in {choice.stt, choice.tts} - {"offline"}:
        _plugin(name)


def engine_voice(name: str, voice: str | None) -> str | None:
    """The flow's ``voice`` if the engine ``name`` can use it, else None (its default).

    ElevenLabs takes voice ids (20 letters and digits), not names such as
    "rachel"; OpenAI takes its voice names; offline voices follow the language
    (the bus agent passes a flow's voice to espeak, which ignores names it lacks).
    """
    if not voice:
        return None
    if name == "elevenlabs":
        return voice if _ELEVENLABS_VOICE_ID.match(voice) else None
    if name == "openai":
        return voice.lower()
    return None


def _check(name: str, known: tuple[str, ...], variable: str, what: str) -> None:
    if name in known:
        return
    hint = did_you_mean(name, known)
    message = f"unknown {what} engine '{name}' (from {variable} or the flow)."
    if hint:
        message += f" {as_sentence(hint)}"
    raise VoxflowError(f"{message} The choices are {quoted_list(known)}.")


def _key(name: str, variable: str, env: Mapping[str, str] | None) -> str:
    env = os.environ if env is None else env
    key_name = _KEYS[name]
    key = env.get(key_name, "").strip()
    if not key:
        raise VoxflowError(
            f"{variable}={name} needs an API key in the environment variable {key_name}; "
            f"set it, or use {variable}=offline, which needs no key"
        )
    return key


def _plugin(name: str) -> ModuleType:
    module = _PLUGINS[name]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise VoxflowError(
            f"the {name} engine needs the package {module.replace('.', '-')}; "
            "install the cloud engines with: pip install 'voxflow[cloud]'"
        ) from exc
