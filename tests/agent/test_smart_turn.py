"""The learned end of turn (Smart Turn v3.2, engine.agent.smart_turn) on real audio.

Real parts: the model file fetched from the pipecat-ai wheel on PyPI, onnxruntime,
Silero VAD and pocketsphinx in a real AgentSession (the audio harness, in real
time), recordings of real people (tests/agent/human_audio.py) and espeak-ng. The
features are checked against values made once with transformers'
WhisperFeatureExtractor (tests/agent/smart_turn_reference.py says how).
"""

from __future__ import annotations

import asyncio
import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from engine.agent import smart_turn, turn_model_file, wav
from engine.agent.dev_agents import DevAgents
from engine.agent.harness import AudioHarness, HarnessOptions
from engine.agent.session import TurnOptions
from engine.agent.settings import settings_from_env
from engine.agent.smart_turn import SmartTurn
from engine.agent.turns import EndOfTurn, TurnStats
from engine.cli.main import main
from engine.core.errors import VoxflowError
from engine.voice.memory_bus import MemoryVoiceBus
from tests.agent.human_audio import SAID, human
from tests.agent.smart_turn_reference import FIXTURE, FRAMES, inputs
from tests.agent.speech import RATE, silence, speech

# Long enough that a model slowed down by a busy machine still answers within it: the
# tests below tell the model's end from the silence's by TurnStats, not by the clock.
END_SILENCE = 1.5
MENU = ["balance", "my balance", "agent", "representative"]


def test_the_features_are_whispers() -> None:
    expected = np.load(FIXTURE)
    for name, audio in inputs().items():
        ours = smart_turn.features(audio)
        assert ours.shape == (80, 800) and ours.dtype == np.float32
        assert np.abs(ours[:, FRAMES] - expected[name]).max() < 1e-5, name


def test_the_features_take_pcm_bytes_and_int16_as_the_model_is_given_them() -> None:
    samples = (inputs()["short"] * 32767).astype(np.int16)
    from_bytes = smart_turn.features(samples.tobytes())
    assert np.array_equal(from_bytes, smart_turn.features(samples))
    assert np.allclose(from_bytes, smart_turn.features(samples.astype(np.float32) / 32768.0))


def test_the_model_tells_a_finished_sentence_from_an_unfinished_one(smart_turn_model: SmartTurn) -> None:
    # What the model hears when the VAD's silence is 0.2 s: the speech, then that silence.
    finished = np.concatenate([human("goforward")[: int(2.4 * RATE)], silence(0.2)])
    unfinished = np.concatenate([silence(0.3), speech("I would like to check my"), silence(0.2)])
    assert smart_turn_model.finished(finished.tobytes()) > 0.9
    assert smart_turn_model.finished(unfinished.tobytes()) < 0.1


@dataclass
class Heard:
    texts: list[str]
    decided: list[float]  # each end of turn, seconds after the caller's last sound
    stats: TurnStats


async def _listen(clip: np.ndarray, model: SmartTurn | None, phrases: list[str] | None = None) -> Heard:
    options = HarnessOptions(turns=TurnOptions(end_of_turn=EndOfTurn(model=model)))
    async with AudioHarness(options=options) as call:
        call.expect_phrases(phrases or [])
        turns = call.voice.turns
        assert turns is not None
        turns.set_end_silence(END_SILENCE)
        start = call.play_caller(np.concatenate([silence(0.5), clip, silence(END_SILENCE + 1.0)]))
        last_sound = start + 0.5 + wav.sound_spans(clip, RATE)[-1][1]
        await call.wait_for_transcript(timeout=15)
        await call.wait_until(start + 0.5 + len(clip) / RATE + END_SILENCE + 0.8)
        return Heard(
            [event.detail["text"] for event in call.events_of("stt")],
            [event.at - last_sound for event in call.events_of("stt_end_of_speech")],
            turns.stats,
        )


def test_a_caller_who_has_finished_is_answered_without_waiting_for_the_whole_silence(
    smart_turn_model: SmartTurn,
) -> None:
    clip = human("goforward")  # "go forward ten meters", free speech: no expected phrases
    on = asyncio.run(_listen(clip, smart_turn_model))
    off = asyncio.run(_listen(clip, None))
    assert (on.stats.early_model, on.stats.full_silence) == (1, 0), on.stats
    assert (off.stats.early_model, off.stats.full_silence) == (0, 1), off.stats
    assert len(on.decided) == 1 and len(off.decided) == 1
    assert on.decided[0] < off.decided[0]
    assert on.texts == off.texts == [SAID["goforward"]]  # the same words, sooner
    check = on.stats.model_checks[0]
    assert check.silence >= EndOfTurn().model_silence and check.probability > 0.5
    print(
        f"\n'{SAID['goforward']}': turn decided {on.decided[0] * 1000:.0f} ms after the last "
        f"sound with the model (asked at {check.silence * 1000:.0f} ms of silence, answered "
        f"P={check.probability:.2f} in {check.seconds * 1000:.0f} ms), "
        f"{off.decided[0] * 1000:.0f} ms without"
    )


def test_a_caller_who_pauses_mid_sentence_is_not_cut_off(smart_turn_model: SmartTurn) -> None:
    # "I would like to check my ... account balance": free speech with a 0.6 s pause, longer
    # than the silence after which the model is asked; it hears an unfinished sentence.
    first, rest = speech("I would like to check my"), speech("account balance")
    heard = asyncio.run(_listen(np.concatenate([first, silence(0.6), rest]), smart_turn_model))
    assert len(heard.texts) == 1 and len(heard.decided) == 1, heard
    assert heard.decided[0] > 0  # after the last word, not in the pause
    assert heard.stats.model_checks[0].probability < 0.5, heard.stats.model_checks
    assert heard.stats.early_model + heard.stats.full_silence == 1


def test_with_expected_phrases_the_grammar_decides_and_the_model_is_not_asked(
    smart_turn_model: SmartTurn,
) -> None:
    # The mid-phrase pause of tests/agent/test_turns.py, with the model on: "my" alone is
    # no phrase of the menu, so the turn waits for the whole silence as before.
    clip = np.concatenate([speech("my"), silence(0.6), speech("balance")])
    heard = asyncio.run(_listen(clip, smart_turn_model, MENU))
    assert heard.texts == ["my balance"]
    assert heard.stats.model_checks == []
    assert heard.stats.early_model == 0


# ---- getting the model, and turning it on ------------------------------------------------


def test_turned_on_but_not_fetched_says_which_command_fetches_it(tmp_path: Path) -> None:
    env = {"VOXFLOW_CACHE_DIR": str(tmp_path), "VOXFLOW_TURN_MODEL": "smart-turn"}
    with pytest.raises(VoxflowError, match="voxflow models fetch smart-turn"):
        turn_model_file.model_path(env)
    agent_env = {
        **env,
        "LIVEKIT_URL": "ws://127.0.0.1:7880",
        "LIVEKIT_API_KEY": "key",
        "LIVEKIT_API_SECRET": "secret",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
    }
    with pytest.raises(VoxflowError, match="voxflow models fetch smart-turn"):
        settings_from_env(agent_env)
    # Unset, dev's 'auto' and the agent's 'off' both go on without it; a typo is named.
    assert turn_model_file.model_path({"VOXFLOW_CACHE_DIR": str(tmp_path)}, default="auto") is None
    assert settings_from_env({**agent_env, "VOXFLOW_TURN_MODEL": "off"}).turn_model is None
    with pytest.raises(VoxflowError, match="'smart-turn'"):
        turn_model_file.model_path({"VOXFLOW_TURN_MODEL": "smart-trun"})


def _wheel(path: Path, model: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(turn_model_file.SMART_TURN.member, model)
        archive.writestr(turn_model_file.SMART_TURN.licence_member, "BSD 2-Clause License\n")
    return path


def test_a_wheel_whose_model_is_not_the_expected_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOXFLOW_CACHE_DIR", str(tmp_path / "cache"))
    wheel = _wheel(tmp_path / "pipecat_ai-1.14.0-py3-none-any.whl", b"not the model")
    assert main(["models", "fetch", "smart-turn", "--wheel", str(wheel)]) == 1
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.onnx"))
    empty = tmp_path / "other.whl"
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("nothing.txt", "")
    with pytest.raises(VoxflowError, match="is not the pipecat-ai==1.14.0 wheel"):
        turn_model_file.fetch(wheel=empty)


def test_fetch_takes_the_model_out_of_the_pipecat_wheel_on_pypi(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VOXFLOW_CACHE_DIR", str(tmp_path))
    assert main(["models", "fetch", "smart-turn"]) == 0
    path = turn_model_file.cached_path()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == turn_model_file.SMART_TURN.sha256
    assert "Copyright (c) 2024–2026, Daily" in (path.parent / "LICENSE").read_text(encoding="utf-8")
    assert turn_model_file.find() == path
    assert main(["models", "list"]) == 0
    assert str(path) in capsys.readouterr().out
    assert turn_model_file.load_model({"VOXFLOW_CACHE_DIR": str(tmp_path), "VOXFLOW_TURN_MODEL": "on"})


def test_voxflow_devs_agents_use_the_model_when_it_is_there(
    smart_turn_model: SmartTurn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOXFLOW_CACHE_DIR", str(smart_turn_model.path.parent.parent.parent))
    monkeypatch.delenv("VOXFLOW_TURN_MODEL", raising=False)

    async def run(expect_model: bool) -> None:
        agents = DevAgents(MemoryVoiceBus())
        await agents.prewarm()
        assert ("Smart Turn" in agents.describe()) is expect_model
        call = await agents.serve("dev-smart-turn")
        turns = call.harness.voice.turns
        assert turns is not None
        assert (turns.policy.model is smart_turn_model) is expect_model
        await agents.aclose()

    asyncio.run(run(True))
    monkeypatch.setenv("VOXFLOW_TURN_MODEL", "off")
    asyncio.run(run(False))
