"""``voxflow chat FLOW --audio caller.wav``: hear a flow, the caller a recording.

The flow runs on the same engine as a typed chat, but its voice nodes talk to
the voice agent's own AgentSession (VAD, speech recognition, speech synthesis)
on the audio harness (engine.agent.audio_chat): the caller's WAV is played
into the line in real time, and what the agent says is recorded to a WAV.
One file is the caller's whole side of the call, silences and all; several
are one answer each, said when the flow has asked and listens.

The speech engines are the voice agent's, chosen the same way: VOXFLOW_STT /
VOXFLOW_TTS, else the offline ones (pocketsphinx and espeak-ng, no key), in the
language of the flow's trigger or settings and the flow's voice.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.agent import engines, wav
from engine.core.errors import VoxflowError
from engine.language.compile import FlowGraph
from engine.simulate.session import CallSetup, EngineOptions, SimulatorEngine, exit_on_interrupt
from engine.simulate.terminal import TerminalView

SAMPLE_RATE = 16000
DEFAULT_LANGUAGE = "en-US"


@dataclass(frozen=True)
class AudioChat:
    """What ``--audio`` was given, checked."""

    caller: list[Path]
    out: Path
    both_sides: bool
    language: str
    choice: engines.EngineChoice


def prepare(
    graph: FlowGraph, audio: Sequence[str], out: str | None, *, both_sides: bool, language: str | None
) -> AudioChat:
    """Check the files and the engines before anything starts (a bad file is named)."""
    caller = [Path(name) for name in audio]
    for path in caller:
        if path.is_dir():
            raise VoxflowError(
                f"--audio {path}: that is a folder; give a WAV file of the "
                "caller's side (16-bit PCM, any rate, mono or stereo)."
            )
        wav.read_pcm(path, SAMPLE_RATE)  # VoxflowError naming the file if it cannot be read
    target = Path(out) if out else Path.cwd() / f"{graph.flow_id}-call.wav"
    if target.is_dir():
        raise VoxflowError(
            f"--out {target}: that is a folder; give the name of the WAV file "
            f"to write, e.g. {target / (graph.flow_id + '-call.wav')}."
        )
    if target.suffix.lower() != ".wav":
        raise VoxflowError(f"--out {target}: the recording is a WAV file; end its name in .wav.")
    if any(target.resolve() == path.resolve() for path in caller):
        raise VoxflowError(
            f"--out {target} is also a caller's file given to --audio; write the recording somewhere else."
        )
    choice = engines.choose()
    missing = engines.problems(choice)
    if missing:
        raise VoxflowError(
            "the speech engines chosen (VOXFLOW_STT / VOXFLOW_TTS) need: "
            + "; ".join(missing)
            + ". Unset them to use the offline engines."
        )
    return AudioChat(
        caller, target, both_sides, language or _setting(graph, "language") or DEFAULT_LANGUAGE, choice
    )


def run(
    view: TerminalView, graph: FlowGraph, setup: CallSetup, options: EngineOptions, chat: AudioChat
) -> None:
    # livekit plugins register themselves on import, and only on the main thread.
    engines.import_plugins(chat.choice)
    asyncio.run(_run(view, graph, setup, options, chat))


async def _run(
    view: TerminalView, graph: FlowGraph, setup: CallSetup, options: EngineOptions, chat: AudioChat
) -> None:
    from livekit.agents.utils import http_context

    from engine.agent.audio_chat import run_audio_call

    def interrupted() -> None:
        print("Interrupted.", file=sys.stderr)

    view.say("Starting the engine...", "dim")
    async with SimulatorEngine(options) as engine, http_context.open():
        exit_on_interrupt(engine, interrupted)
        recogniser = engines.make_stt(chat.choice.stt, language=chat.language)
        voice = engines.engine_voice(chat.choice.tts, _setting(graph, "voice"))
        synthesiser = engines.make_tts(chat.choice.tts, language=chat.language, voice=voice)
        view.say(f"Ready ({engine.where}). The call begins; it plays in real time.", "dim")
        view.say()
        call_id = f"audio-{uuid.uuid4().hex[:12]}"
        engine.answers.register(call_id, setup.answers)
        try:
            result = await run_audio_call(
                graph,
                chat.caller if len(chat.caller) > 1 else chat.caller[0],
                chat.out,
                engine=engine,
                call_id=call_id,
                call={"caller_number": setup.caller_number, "called_number": setup.called_number},
                variables=dict(setup.variables),
                stt_engine=recogniser,
                tts_engine=synthesiser,
                on_line=lambda who, text: _line(view, who, text),
                both_sides=chat.both_sides,
            )
        finally:
            engine.answers.forget(call_id)
    view.show("end", f"{result.status} — {result.reason}")
    view.say(f"Path: {' → '.join(result.path)}", "dim")
    heard = "the agent and the caller" if chat.both_sides else "what the agent said"
    view.say(f"The call's audio ({heard}, {result.seconds:.1f} s) is in {result.out_wav.resolve()}", "bold")


def _line(view: TerminalView, speaker: str, text: str) -> None:
    text = " ".join(text.split())  # a prompt written as a folded YAML block ends in a newline
    if speaker == "agent":
        view.show("agent", text)
    else:
        view.show("plain", f"{view.paint('caller:', 'yellow', 'bold')} {text}")


def _setting(graph: FlowGraph, name: str) -> str | None:
    value = graph.settings.get(name)
    return str(value) if value else None
