"""`voxflow dev` refuses, before starting anything, speech engines its agent cannot use."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.cli.main import main


def test_a_cloud_engine_without_its_key_is_refused_in_plain_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "flows").mkdir()
    monkeypatch.setenv("VOXFLOW_STT", "deepgram")
    monkeypatch.delenv("DEEPGRAM_API_KEY", raising=False)
    monkeypatch.delenv("LIVEKIT_URL", raising=False)
    code = main(["dev", "--flows", str(tmp_path / "flows"), "--state-dir", str(tmp_path / "s")])
    assert code == 1
    said = capsys.readouterr().err
    assert "DEEPGRAM_API_KEY" in said and "--no-agent" in said
    assert not (tmp_path / "s").exists()  # nothing was started


def test_a_misspelt_engine_gets_did_you_mean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "flows").mkdir()
    monkeypatch.setenv("VOXFLOW_TTS", "elevenlab")
    monkeypatch.delenv("LIVEKIT_URL", raising=False)
    assert main(["dev", "--flows", str(tmp_path / "flows")]) == 1
    assert "Did you mean 'elevenlabs'" in capsys.readouterr().err


def test_the_turn_model_asked_for_but_not_fetched_names_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "flows").mkdir()
    monkeypatch.setenv("VOXFLOW_TURN_MODEL", "smart-turn")
    monkeypatch.setenv("VOXFLOW_CACHE_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("LIVEKIT_URL", raising=False)
    code = main(["dev", "--flows", str(tmp_path / "flows"), "--state-dir", str(tmp_path / "s")])
    assert code == 1
    assert "voxflow models fetch smart-turn" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()  # nothing was started
