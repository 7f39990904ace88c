"""End of the caller's speech → the agent's first audio frame, on the audio harness.

Run: ``python -m bench.bench_agent`` (starts the embedded Temporal dev server,
or uses ``TEMPORAL_ADDRESS`` when set). Offline engines (Silero VAD,
pocketsphinx, espeak-ng), real time, the real engine path: a Temporal worker
(on its own thread, as it would be its own process) runs a flow whose menu
asks "Say balance." and whose next node answers; the caller's espeak
"balance" goes into the harness line 0.3 s after each question. Each turn is
split at four points on the harness timeline:

VAD end of turn
    end of the caller's sound → the STT's end of speech (Silero heard the menu's
    end_silence_ms of silence: the flow's choice, 800 ms by default)
STT
    → pocketsphinx's final transcript
engine (bus + workflow)
    → the answer's speak command on the bus: speech:complete published, the
    menu node's activity returns, the workflow moves on, the next node's
    activity sends its command
TTS first chunk
    → the first frame of the answer heard on the line

Target: the engine's share of the whole under 10%. The first turn warms up
and is not counted; figures are medians (and 90th percentiles) over the turns.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import textwrap
import threading
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

if __package__ in (None, ""):  # run as a script: python bench/bench_agent.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from engine.agent import espeak, wav
from engine.agent.bus_agent import BusAgent
from engine.agent.control import LocalCallControl
from engine.agent.harness import AudioHarness
from engine.compile import FlowGraph, compile_flow
from engine.load import load_text
from engine.registry import default_registry
from engine.runtime.calls import start_call
from engine.runtime.services import RuntimeServices
from engine.runtime.worker import WorkerOptions, create_worker
from engine.temporal_server import (
    EmbeddedTemporal, TemporalSettings, connect_client, temporal_settings_from_env,
)
from engine.voice.bus import START
from engine.voice.memory_bus import MemoryVoiceBus
from engine.voice.messages import Speak, TtsComplete

TARGET_SHARE = 0.10
RATE = 16000
ANSWER_DELAY = 0.3
FLOW = textwrap.dedent("""\
    flow: bench-agent
    start: ask
    nodes:
      ask:
        type: voice_menu
        prompt: "Say balance."
        options:
          - {phrases: [balance, agent], next: answer}
        max_visits: 1000
      answer:
        type: voice_speak
        message: "Balance it is."
        next: ask
        max_visits: 1000
    """)
PARTS = ("VAD end of turn", "STT", "engine (bus + workflow)", "TTS first chunk")
_T = TypeVar("_T")


@dataclass(frozen=True)
class Turn:
    vad: float
    stt: float
    engine: float
    tts: float

    @property
    def parts(self) -> tuple[float, float, float, float]:
        return (self.vad, self.stt, self.engine, self.tts)

    @property
    def total(self) -> float:
        return sum(self.parts)


class _Thread:
    """An event loop on its own thread: the worker's, away from the real-time audio."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    async def run(self, work: Coroutine[Any, Any, _T]) -> _T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, self.loop))

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class _Commands:
    """The call's commands as the bus delivers them, with their harness times."""

    def __init__(self, bus: MemoryVoiceBus, call_id: str, harness: AudioHarness) -> None:
        self.seen: list[tuple[float, Any]] = []
        self.events: list[tuple[float, Any]] = []
        self._tasks = [asyncio.ensure_future(self._follow(bus.read_commands, call_id, harness,
                                                          self.seen)),
                       asyncio.ensure_future(self._follow(bus.read_events, call_id, harness,
                                                          self.events))]

    @staticmethod
    async def _follow(read: Any, call_id: str, harness: AudioHarness,
                      into: list[tuple[float, Any]]) -> None:
        after = START
        while True:
            for entry_id, message in await read(call_id, after, 1.0):
                after = entry_id
                into.append((harness.timeline.now(), message))

    async def next(self, kind: type[Any], where: Any, after: float, source: str = "seen",
                   timeout: float = 20.0) -> tuple[float, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            for at, message in getattr(self, source):
                if at >= after and isinstance(message, kind) and where(message):
                    return at, message
            await asyncio.sleep(0.005)
        raise TimeoutError(f"no {kind.__name__} within {timeout} s")

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()


def _graph() -> FlowGraph:
    return compile_flow(load_text(FLOW, "bench-agent.yaml"), default_registry())


async def measure(settings: TemporalSettings, turns: int) -> list[Turn]:
    pcm, rate = espeak.synthesize_pcm("balance")
    caller = np.frombuffer(wav.resample(pcm, rate, RATE), dtype=np.int16)
    sound_end = wav.sound_spans(caller, RATE)[-1][1]
    bus = MemoryVoiceBus()
    worker_thread = _Thread()
    queue = f"bench-agent-{uuid.uuid4().hex[:8]}"
    services = RuntimeServices(voice_bus=bus)

    async def start_worker() -> Any:
        client = await connect_client(settings)
        worker = create_worker(client, services, WorkerOptions(task_queue=queue,
                                                               graceful_shutdown=1))
        asyncio.ensure_future(worker.run())
        return worker

    worker = await worker_thread.run(start_worker())
    client = await connect_client(settings)
    call_id = f"bench-{uuid.uuid4().hex[:10]}"
    measured: list[Turn] = []
    try:
        async with AudioHarness() as call:
            agent = BusAgent(bus, call_id, call.voice, LocalCallControl())
            agent.start()
            watch = _Commands(bus, call_id, call)
            await start_call(client, _graph(), call_id, task_queue=queue)
            after = 0.0
            for turn in range(turns + 1):
                asked_at, asked = await watch.next(Speak, lambda s: s.text == "Say balance.",
                                                   after)
                rid = asked.request_id
                done_at, _ = await watch.next(TtsComplete, lambda e, rid=rid: e.request_id == rid,
                                              asked_at, source="events")
                await call.wait_until(done_at + ANSWER_DELAY)
                speech_end = call.play_caller(caller) + sound_end
                decided = await call.wait_for_event("stt_end_of_speech", after=speech_end - 0.3)
                final = await call.wait_for_event("stt", after=decided.at)
                spoke_at, spoke = await watch.next(Speak, lambda s: s.text == "Balance it is.",
                                                   final.at - 0.01)
                heard = await _first_audio_after(call, spoke_at)
                if turn:  # the first turn warms everything up
                    measured.append(Turn(decided.at - speech_end, final.at - decided.at,
                                         spoke_at - final.at, heard - spoke_at))
                after = spoke_at
            agent.caller_left("the benchmark is over")
            await asyncio.sleep(0.5)
            watch.close()
    finally:
        await worker_thread.run(worker.shutdown())
        await worker_thread.run(services.close())
        worker_thread.close()
    return measured


async def _first_audio_after(call: AudioHarness, at: float, timeout: float = 10.0) -> float:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        for segment in call.speaker.segments:
            if segment.started_at is not None and segment.started_at >= at:
                return segment.started_at
        await asyncio.sleep(0.002)
    raise TimeoutError("the answer was never heard")


def report(turns: list[Turn], server: str) -> bool:
    def ms(values: list[float]) -> tuple[str, str]:
        ordered = sorted(values)
        p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
        return f"{statistics.median(values) * 1000:7.0f}", f"{p90 * 1000:7.0f}"

    print(f"end of caller speech → first agent audio frame: offline engines, {len(turns)} turns, "
          f"Temporal on {server}")
    print(f"{'part':26} {'median ms':>9} {'p90 ms':>8}")
    for index, name in enumerate(PARTS):
        median, p90 = ms([turn.parts[index] for turn in turns])
        print(f"{name:26} {median:>9} {p90:>8}")
    median, p90 = ms([turn.total for turn in turns])
    print(f"{'whole':26} {median:>9} {p90:>8}")
    share = statistics.median(turn.engine / turn.total for turn in turns)
    met = share < TARGET_SHARE
    print(f"engine share of the whole: {share * 100:.1f}% (median per turn); target under "
          f"{TARGET_SHARE * 100:.0f}%: {'met' if met else 'MISSED'}")
    return met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--turns", type=int, default=10, help="measured turns (default 10)")
    args = parser.parse_args(argv)
    settings = temporal_settings_from_env()
    if settings.address is not None:
        turns = asyncio.run(measure(settings, args.turns))
        ok = report(turns, settings.address)
    else:
        with EmbeddedTemporal() as server:
            turns = asyncio.run(measure(server.settings(), args.turns))
            ok = report(turns, f"the embedded dev server ({server.address})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
