"""Hearing a flow (``voxflow chat --audio``): a caller's WAV answers, the agent's audio is kept."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from temporalio.client import Client

from engine.agent import wav
from engine.agent.audio_chat import run_audio_call
from engine.runtime import messages as m
from engine.temporal_server import connect_client
from engine.voice.bus import VoiceBus
from tests.agent.conftest import VoiceEngine
from tests.agent.speech import RATE, speech
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
        engine = _Engine(await connect_client(voice_engine.settings), voice_engine.task_queue,
                         voice_engine.bus)
        return await run_audio_call(compiled(FLOW), [caller_wav], out_wav, engine=engine,
                                    on_line=lambda who, text: lines.append((who, text)))

    result = asyncio.run(scenario())
    assert result.status == m.COMPLETED, result
    assert result.path == ["hello", "ask", "agreed", "bye"]
    assert lines == [("agent", "Hello."), ("agent", "Say yes or no."), ("caller", "yes"),
                     ("agent", "You said yes."), ("agent", "Goodbye.")]
    audio = np.frombuffer(wav.read_pcm(out_wav, RATE), dtype=np.int16)
    # Hello + the question, then (after the caller's answer) the reply and goodbye.
    assert len(wav.sound_spans(audio, RATE)) >= 2
    assert wav.sound_seconds(audio, RATE) > 2.0
