"""``voxflow agent``: its configuration, checked before anything starts."""

from __future__ import annotations

import pytest
from livekit.agents import AgentServer

from engine.agent import worker
from engine.agent.settings import settings_from_env
from engine.cli.main import main

COMPLETE = {
    "LIVEKIT_URL": "wss://voxflow.example.livekit.cloud",
    "LIVEKIT_API_KEY": "APIkey",
    "LIVEKIT_API_SECRET": "secret",
    "REDIS_URL": "redis://localhost:6379/0",
}
_ALL = [
    *COMPLETE,
    "VOXFLOW_REDIS_URL",
    "VOXFLOW_STT",
    "VOXFLOW_TTS",
    "DEEPGRAM_API_KEY",
    "ELEVEN_API_KEY",
    "OPENAI_API_KEY",
]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in _ALL:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_missing_configuration_is_listed_in_plain_words(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_env.setenv("VOXFLOW_STT", "deepgram")
    assert main(["agent"]) == 1
    said = capsys.readouterr()
    text = said.err + said.out
    for name in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "REDIS_URL", "DEEPGRAM_API_KEY"):
        assert name in text, text
    assert "Traceback" not in text


def test_a_complete_configuration_passes_the_check(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in COMPLETE.items():
        clean_env.setenv(name, value)
    assert main(["agent", "--check"]) == 0
    assert "configuration is complete" in capsys.readouterr().out


def test_the_worker_registers_as_the_voxflow_agent(clean_env: pytest.MonkeyPatch) -> None:
    settings = settings_from_env(COMPLETE)
    assert settings.engines.stt == "offline" and settings.redis_url == COMPLETE["REDIS_URL"]
    server = worker.build_server(settings)
    assert isinstance(server, AgentServer)
    assert server._agent_name == worker.AGENT_NAME == "voxflow"  # explicit dispatch only
    assert server.setup_fnc is worker.prewarm


def test_a_flow_voice_reaches_only_engines_that_can_use_it() -> None:
    from engine.agent.engines import engine_voice

    assert engine_voice("elevenlabs", "rachel") is None  # a name, not an ElevenLabs voice id
    assert engine_voice("elevenlabs", "21m00Tcm4TlvDq8ikWAM") == "21m00Tcm4TlvDq8ikWAM"
    assert engine_voice("openai", "Alloy") == "alloy"
    assert engine_voice("offline", "rachel") is None
