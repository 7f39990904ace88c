"""Hear a flow: one call on the real engine, the caller a WAV file, the agent recorded.

For ``voxflow chat --audio caller.wav``: the flow runs as a Temporal workflow
on an engine (the chat's SimulatorEngine, or one started here), its voice
nodes talk over the bus to a BusAgent on the audio harness, and the caller's
side is audio:

- one WAV: played into the line from the moment the call is answered, silences
  and all, as a recording of the caller's side would be;
- several WAVs: each is the caller's next answer, played once the flow listens
  and its question has been said (0.3 s after the prompt ends).

When the caller has nothing left to say and the flow has waited ``patience``
seconds for an answer, the caller hangs up. What the agent said (and, with
``both_sides``, the caller too) is written to ``out_wav``.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from livekit.agents import stt, tts
from temporalio.client import Client

from engine.agent import wav
from engine.agent.bus_agent import BusAgent
from engine.agent.control import LocalCallControl
from engine.agent.harness import AudioHarness
from engine.language.compile import FlowGraph
from engine.runtime import messages as m
from engine.runtime.calls import hang_up, start_call
from engine.voice.bus import START, VoiceBus
from engine.voice.messages import (
    CollectDtmf,
    Dtmf,
    Listen,
    Record,
    RecordComplete,
    Speak,
    SpeechComplete,
    Stop,
    TtsComplete,
    TtsInterrupted,
)

LineHandler = Callable[[str, str], None]  # (speaker "agent" / "caller", text)
ANSWER_DELAY = 0.3  # a caller answers a moment after the question ends


class CallEngine(Protocol):
    """What a call needs from an engine (engine.simulate.session.SimulatorEngine has it)."""

    @property
    def client(self) -> Client: ...

    task_queue: str

    async def caller_bus(self) -> VoiceBus: ...


@dataclass(frozen=True)
class AudioCallResult:
    status: str
    reason: str
    path: list[str]
    lines: list[tuple[str, str]]  # ("agent" | "caller", text), in order
    out_wav: Path
    seconds: float


@dataclass
class _Progress:
    """What the bus says about the call, for pacing the caller."""

    input_rid: str | None = None  # the listen / collect_dtmf / record outstanding
    answered: bool = False  # the caller has answered it (the flow is taking it in)
    speaking: set[str] = field(default_factory=set)  # prompts not yet finished
    waiting_since: float | None = None  # the flow waits for an answer, prompts done
    lines: list[tuple[str, str]] = field(default_factory=list)


async def run_audio_call(
    graph: FlowGraph,
    caller_audio: Path | Sequence[Path],
    out_wav: Path,
    *,
    engine: CallEngine | None = None,
    call: Mapping[str, Any] | None = None,
    variables: Mapping[str, Any] | None = None,
    stt_engine: stt.STT | None = None,
    tts_engine: tts.TTS | None = None,
    on_line: LineHandler | None = None,
    patience: float = 8.0,
    both_sides: bool = False,
    timeout: float = 600.0,
    call_id: str | None = None,
) -> AudioCallResult:
    """Run ``graph`` once with the caller's audio; write the call's audio to ``out_wav``.

    ``call_id`` names the call (e.g. to give its nodes fixed answers first); by default
    a new ``audio-...`` id.
    """
    if engine is None:
        from engine.simulate.session import SimulatorEngine

        async with SimulatorEngine() as own_engine:
            return await run_audio_call(
                graph,
                caller_audio,
                out_wav,
                engine=own_engine,
                call=call,
                variables=variables,
                stt_engine=stt_engine,
                tts_engine=tts_engine,
                on_line=on_line,
                patience=patience,
                both_sides=both_sides,
                timeout=timeout,
                call_id=call_id,
            )
    whole = isinstance(caller_audio, (str, Path))  # one recording, or one clip per answer
    clips = [caller_audio] if isinstance(caller_audio, (str, Path)) else list(caller_audio)
    pcm = deque(wav.read_pcm(Path(clip), 16000) for clip in clips)  # fail early on a bad file
    call_id = call_id or f"audio-{uuid.uuid4().hex[:12]}"
    bus = await engine.caller_bus()
    progress = _Progress()

    def line(speaker: str, text: str) -> None:
        progress.lines.append((speaker, text))
        if on_line is not None:
            on_line(speaker, text)

    async with AudioHarness(stt_engine=stt_engine, tts_engine=tts_engine) as harness:
        agent = BusAgent(bus, call_id, harness.voice, LocalCallControl(), agent_id="audio-chat")
        serving = agent.start()
        watching = asyncio.ensure_future(_watch(bus, call_id, progress, harness, line))
        handle = await start_call(
            engine.client,
            graph,
            call_id,
            call={"call_sid": call_id, **dict(call or {})},
            variables=variables,
            task_queue=engine.task_queue,
        )
        if whole:
            harness.play_caller(pcm.popleft())
        caller = asyncio.ensure_future(_caller(harness, agent, pcm, progress, patience))
        try:
            result: m.CallResult = await asyncio.wait_for(handle.result(), timeout)
        except BaseException:
            with contextlib.suppress(Exception):
                await hang_up(engine.client, call_id, "the audio call was stopped")
            raise
        finally:
            caller.cancel()
            watching.cancel()
            if not serving.done():
                await agent.abandon()
            with contextlib.suppress(Exception):
                await bus.end_call(call_id)
        seconds = harness.timeline.now()
        audio = harness.agent_audio()
        if both_sides:
            audio = mix(audio, harness.caller_audio())
    out_wav.parent.mkdir(parents=True, exist_ok=True)
    wav.write(out_wav, audio, 16000)
    return AudioCallResult(result.status, result.reason, list(result.path), progress.lines, out_wav, seconds)


async def _caller(
    harness: AudioHarness, agent: BusAgent, clips: deque[bytes], progress: _Progress, patience: float
) -> None:
    """Answer each time the flow waits; hang up once nothing is left and it waits on."""
    while True:
        await asyncio.sleep(0.05)
        since = progress.waiting_since
        if since is None or harness.line.busy_until > harness.timeline.now():
            continue
        waited = harness.timeline.now() - since
        if clips and waited >= ANSWER_DELAY:
            progress.answered, progress.waiting_since = True, None
            harness.play_caller(clips.popleft())
        elif not clips and waited >= patience:
            agent.caller_left("the caller had nothing more to say")
            return


async def _watch(
    bus: VoiceBus, call_id: str, progress: _Progress, harness: AudioHarness, line: LineHandler
) -> None:
    """Follow both streams: who said what, and when the flow is waiting for an answer."""
    after_commands = after_events = START

    def done(rid: str) -> None:
        if rid == progress.input_rid:
            progress.input_rid, progress.answered = None, False

    while True:
        for entry_id, command in await bus.read_commands(call_id, after_commands, 0):
            after_commands = entry_id
            if isinstance(command, Speak):
                progress.speaking.add(command.request_id)
                line("agent", command.text)
            elif isinstance(command, (Listen, CollectDtmf, Record)):
                progress.input_rid, progress.answered = command.request_id, False
            elif isinstance(command, Stop):
                done(command.target)
        for entry_id, event in await bus.read_events(call_id, after_events, 0.05):
            after_events = entry_id
            if isinstance(event, (TtsComplete, TtsInterrupted)):
                progress.speaking.discard(event.request_id)
            elif isinstance(event, SpeechComplete):
                line("caller", event.transcript or "[nothing recognised]")
                done(event.request_id)
            elif isinstance(event, Dtmf):
                line("caller", f"[presses {event.digit}]")
            elif isinstance(event, RecordComplete):
                done(event.request_id)
        waiting = progress.input_rid is not None and not progress.answered
        if waiting and not progress.speaking:
            if progress.waiting_since is None:
                progress.waiting_since = harness.timeline.now()
        else:
            progress.waiting_since = None


def mix(agent: np.ndarray, caller: np.ndarray) -> np.ndarray:
    size = max(len(agent), len(caller))
    total = np.zeros(size, dtype=np.int32)
    total[: len(agent)] += agent
    total[: len(caller)] += caller
    return np.clip(total, -32768, 32767).astype(np.int16)
