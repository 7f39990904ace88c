"""Hearing a flow (``voxflow chat --audio``): a caller's WAV answers, the agent's audio is kept.

Through the library (run_audio_call) and through the command line, as a flow author runs it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from temporalio.client import Client

from engine.agent import wav
from engine.agent.audio_chat import run_audio_call
from engine.cli.main import main
from engine.runtime import messages as m
from engine.runtime.temporal_server import TemporalSettings, connect_client
from engine.voice.bus import VoiceBus
from tests.agent.conftest import FLOWS_DIR, VoiceEngine
from tests.agent.speech import RATE, silence, speech
from tests.voice.support import compiled

FLOW = """
flow: yes-or-no
start: hello
nodes:
  hello: {type: voice_greet, message: "Hello.", next: ask}
  ask:
    type: voice_menu
    prompt: "Say yes or no."
    options:
      - {phrases: ["yes"], next: agreed}
      - {phrases: ["no"], next: bye}
  agreed: {type: voice_speak, message: "You said yes.", next: bye}
  bye: {type: voice_hangup, farewell_message: "Goodbye."}
"""


@dataclass
class _Engine:
    client: Client
    task_queue: str
    bus: VoiceBus

    async def caller_bus(self) -> VoiceBus:
        return self.bus


def test_a_flow_is_heard_with_the_callers_wav(voice_engine: VoiceEngine, tmp_path: Path) -> None:
    caller_wav, out_wav = tmp_path / "caller.wav", tmp_path / "agent.wav"
    wav.write(caller_wav, speech("yes"), RATE)
    lines: list[tuple[str, str]] = []

    async def scenario() -> m.CallResult | object:
        engine = _Engine(
            await connect_client(voice_engine.settings), voice_engine.task_queue, voice_engine.bus
        )
        return await run_audio_call(
            compiled(FLOW),
            [caller_wav],
            out_wav,
            engine=engine,
            on_line=lambda who, text: lines.append((who, text)),
        )

    result = asyncio.run(scenario())
    assert result.status == m.COMPLETED, result
    assert result.path == ["hello", "ask", "agreed", "bye"]
    assert lines == [
        ("agent", "Hello."),
        ("agent", "Say yes or no."),
        ("caller", "yes"),
        ("agent", "You said yes."),
        ("agent", "Goodbye."),
    ]
    audio = np.frombuffer(wav.read_pcm(out_wav, RATE), dtype=np.int16)
    # Hello + the question, then (after the caller's answer) the reply and goodbye.
    assert len(wav.sound_spans(audio, RATE)) >= 2
    assert wav.sound_seconds(audio, RATE) > 2.0


def _cli_env(monkeypatch: pytest.MonkeyPatch, temporal: TemporalSettings, cwd: Path) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", str(temporal.address))
    monkeypatch.setenv("TEMPORAL_NAMESPACE", temporal.namespace)
    for name in ("VOXFLOW_STT", "VOXFLOW_TTS", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(cwd)


def test_voxflow_chat_audio_plays_the_callers_wav_and_writes_the_agents_audio(
    temporal_settings: TemporalSettings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The whole caller side in one WAV: silent through the greeting, then "balance" while
    the question is asked (the caller cuts in), then silent; the offline engines hear it."""
    _cli_env(monkeypatch, temporal_settings, tmp_path)
    caller = tmp_path / "caller.wav"
    wav.write(caller, np.concatenate([silence(4.5), speech("balance"), silence(1.0)]), RATE)
    code = main(
        [
            "chat",
            str(FLOWS_DIR / "account-balance.yaml"),
            "--audio",
            str(caller),
            "--answers",
            str(FLOWS_DIR / "tests" / "account-balance.answers.yaml"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    said = [line for line in out.splitlines() if line.startswith(("agent:", "caller:"))]
    assert said == [
        "agent: Hello there! Welcome to Acme Bank.",
        "agent: How can I help you today? You can ask for your balance, or for an agent.",
        "caller: balance",
        "agent: Your current balance is $42.17.",
        "agent: Thank you for calling. Goodbye!",
    ], out
    assert "Call ended: completed" in out
    recording = tmp_path / "account-balance-call.wav"  # the default: <flow>-call.wav, here
    assert f"is in {recording}" in out
    audio = np.frombuffer(wav.read_pcm(recording, RATE), dtype=np.int16)
    # The greeting, the question (cut short), the balance and goodbye: the agent's speech.
    assert len(wav.sound_spans(audio, RATE)) >= 3
    assert wav.sound_seconds(audio, RATE) > 4.0


def test_voxflow_chat_audio_names_a_file_it_cannot_use(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    flow = str(FLOWS_DIR / "account-balance.yaml")
    not_wav = tmp_path / "notes.wav"
    not_wav.write_text("these are not sounds")
    good = tmp_path / "good.wav"
    wav.write(good, silence(0.5), RATE)
    cases = [
        (["--audio", str(tmp_path / "missing.wav")], ["missing.wav", "cannot read"]),
        (["--audio", str(not_wav)], ["notes.wav", "not a WAV file"]),
        (["--audio", str(good), str(tmp_path)], [str(tmp_path), "folder"]),
        (["--audio", str(good), "--out", str(good)], ["good.wav", "somewhere else"]),
        (["--audio", str(good), "--out", str(tmp_path / "call.mp3")], ["call.mp3", ".wav"]),
        (["--out", str(tmp_path / "call.wav")], ["--audio"]),
    ]
    for extra, words in cases:
        started = time.monotonic()
        assert main(["chat", flow, *extra]) == 1, extra
        error = capsys.readouterr().err
        assert all(word in error for word in words), (extra, error)
        assert "Traceback" not in error
        assert time.monotonic() - started < 5  # refused before any engine starts
