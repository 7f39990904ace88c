"""Choosing speech engines by configuration (no network: cloud engines are only built)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from engine.agent import engines
from engine.agent.offline_stt import OfflineSTT
from engine.agent.offline_tts import OfflineTTS
from engine.core.errors import VoxflowError


def test_offline_is_the_default() -> None:
    assert engines.choose({}) == engines.EngineChoice("offline", "offline")


def test_the_environment_chooses_and_the_flow_overrides_it() -> None:
    env = {"VOXFLOW_STT": "Deepgram", "VOXFLOW_TTS": "elevenlabs"}
    assert engines.choose(env) == engines.EngineChoice("deepgram", "elevenlabs")
    assert engines.choose(env, stt_name="offline", tts_name="openai") == engines.EngineChoice(
        "offline", "openai"
    )


def test_a_misspelled_engine_gets_a_suggestion() -> None:
    with pytest.raises(VoxflowError) as caught:
        engines.choose({"VOXFLOW_STT": "deepgrm"})
    assert "unknown speech recognition engine 'deepgrm'" in str(caught.value)
    assert "Did you mean 'deepgram'?" in str(caught.value)


@pytest.mark.parametrize(
    ("make", "name", "key"),
    [
        (engines.make_stt, "deepgram", "DEEPGRAM_API_KEY"),
        (engines.make_stt, "openai", "OPENAI_API_KEY"),
        (engines.make_tts, "elevenlabs", "ELEVEN_API_KEY"),
        (engines.make_tts, "openai", "OPENAI_API_KEY"),
    ],
)
def test_a_cloud_engine_without_its_key_says_which_key(
    make: Callable[..., object], name: str, key: str
) -> None:
    with pytest.raises(VoxflowError, match=f"needs an API key in the environment variable {key}"):
        make(name, env={})


def test_cloud_engines_are_the_official_plugins() -> None:
    pytest.importorskip("livekit.plugins.deepgram")
    pytest.importorskip("livekit.plugins.elevenlabs")
    pytest.importorskip("livekit.plugins.openai")
    env = {"DEEPGRAM_API_KEY": "k", "ELEVEN_API_KEY": "k", "OPENAI_API_KEY": "k"}
    assert type(engines.make_stt("deepgram", env=env)).__module__ == "livekit.plugins.deepgram.stt"
    assert type(engines.make_stt("openai", env=env)).__module__ == "livekit.plugins.openai.stt"
    elevenlabs = engines.make_tts("elevenlabs", env=env, voice="voice-id")
    assert type(elevenlabs).__module__ == "livekit.plugins.elevenlabs.tts"
    assert type(engines.make_tts("openai", env=env)).__module__ == "livekit.plugins.openai.tts"


def test_offline_engines_need_no_key() -> None:
    assert isinstance(engines.make_stt("offline", env={}), OfflineSTT)
    french = engines.make_tts("offline", language="fr-FR", env={})
    assert isinstance(french, OfflineTTS)
    assert french.voice.name == "fr"
