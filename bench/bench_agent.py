"""End of the caller's speech → the agent's first audio frame, on the audio harness.

Run: ``python -m bench.bench_agent`` (starts the embedded Temporal dev server,
or uses ``TEMPORAL_ADDRESS`` when set). Offline engines (Silero VAD,
pocketsphinx, espeak-ng), real time, the real engine path: a Temporal worker
(on its own thread, as it would be its own process) runs a flow that asks
three kinds of question in turn, and the caller (espeak) answers each 0.3 s
after it is asked:

menu answer
    "Say balance." → "balance" (a voice_menu's phrase) → "Balance it is."
yes/no
    "Is that right?" → "yes" (a voice_listen with expected phrases) → "Noted."
free speech
    "Tell me what happened." → "I lost my card yesterday" (no phrases) → "Thank you."

Each turn is split at four points on the harness timeline:

end of turn
    end of the caller's sound → the recogniser's end of speech (the turn is
    decided; "after", this includes the recognition run during the silence)
STT
    → the final transcript (after the decision)
engine (bus + workflow)
    → the answer's speak command on the bus
TTS first audio
    → the first frame of the answer heard on the line

The same calls run twice in one run: "before" with the new behaviour off
(end of turn after the whole end_silence_ms of VAD silence, then recognition;
no prompt cache), and "after" with it on (engine.agent.turns: a whole expected
phrase ends the turn after a short silence, speech recognised ahead of the end
silence; engine.agent.prompt_cache prepared with the flow's fixed prompts, as
``voxflow dev`` does when it loads a flow). The first round of each warms up
and is not counted; figures are medians (and 90th percentiles).

Targets (issue 16): menu and yes/no ≤ 400 ms, free speech ≤ 700 ms, a cached
prompt's first audio ≤ 5 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import textwrap
import threading
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

if __package__ in (None, ""):  # run as a script: python bench/bench_agent.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from engine.agent import espeak, wav
from engine.agent.bus_agent import BusAgent
from engine.agent.control import LocalCallControl
from engine.agent.harness import AudioHarness, HarnessOptions
from engine.agent.offline_tts import OfflineTTS
from engine.agent.prompt_cache import DiskStore, PromptCache, graph_prompts
from engine.agent.session import TurnOptions
from engine.agent.turns import EndOfTurn
from engine.language.compile import FlowGraph, compile_flow
from engine.language.load import load_text
from engine.language.registry import default_registry
from engine.runtime.calls import start_call
from engine.runtime.services import RuntimeServices
from engine.runtime.temporal_server import (
    EmbeddedTemporal,
    TemporalSettings,
    connect_client,
    temporal_settings_from_env,
)
from engine.runtime.worker import WorkerOptions, create_worker
from engine.voice.bus import START
from engine.voice.memory_bus import MemoryVoiceBus
from engine.voice.messages import Speak, TtsComplete

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
        next: confirm
        max_visits: 1000
      confirm:
        type: voice_listen
        prompt: "Is that right?"
        expected_phrases: ["yes", "no"]
        next: noted
        max_visits: 1000
      noted:
        type: voice_speak
        message: "Noted."
        next: story
        max_visits: 1000
      story:
        type: voice_listen
        prompt: "Tell me what happened."
        low_confidence_threshold: 0
        next: thanks
        max_visits: 1000
      thanks:
        type: voice_speak
        message: "Thank you."
        next: ask
        max_visits: 1000
    """)
# The menu turn alone, as bench.bench_browser_call's voxflow dev serves it.
MENU_FLOW = textwrap.dedent("""\
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
# (question, what the caller says, the answer's first words)
KINDS = {
    "menu answer": ("Say balance.", "balance", "Balance it is."),
    "yes/no": ("Is that right?", "yes", "Noted."),
    "free speech": ("Tell me what happened.", "I lost my card yesterday", "Thank you."),
}
PARTS = ("end of turn", "STT", "engine (bus + workflow)", "TTS first audio")
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
        self._tasks = [
            asyncio.ensure_future(self._follow(bus.read_commands, call_id, harness, self.seen)),
            asyncio.ensure_future(self._follow(bus.read_events, call_id, harness, self.events)),
        ]

    @staticmethod
    async def _follow(read: Any, call_id: str, harness: AudioHarness, into: list[tuple[float, Any]]) -> None:
        after = START
        while True:
            for entry_id, message in await read(call_id, after, 1.0):
                after = entry_id
                into.append((harness.timeline.now(), message))

    async def next(
        self, kind: type[Any], where: Any, after: float, source: str = "seen", timeout: float = 20.0
    ) -> tuple[float, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            for at, message in getattr(self, source):
                if at >= after and isinstance(message, kind) and where(message):
                    return at, message
            await asyncio.sleep(0.005)
        last = [
            type(m).__name__ + ":" + str(getattr(m, "text", "") or "") for _a, m in getattr(self, source)[-6:]
        ]
        raise TimeoutError(f"no {kind.__name__} within {timeout} s; the last {source}: {last}")

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()


def _graph(flow: str = FLOW) -> FlowGraph:
    return compile_flow(load_text(flow, "bench-agent.yaml"), default_registry())


@dataclass
class Run:
    """One configuration's measured turns, by kind, and its prompt cache figures."""

    name: str
    turns: dict[str, list[Turn]]
    cache: PromptCache | None = None
    cached_first_audio: list[float] = field(default_factory=list)  # speak → first frame, hits


def _caller(text: str) -> tuple[np.ndarray, float]:
    pcm, rate = espeak.synthesize_pcm(text)
    samples = np.frombuffer(wav.resample(pcm, rate, RATE), dtype=np.int16)
    return samples, wav.sound_spans(samples, RATE)[-1][1]


async def measure(
    settings: TemporalSettings,
    rounds: int,
    *,
    new: bool,
    cache_dir: Path,
    flow: str = FLOW,
    kinds: dict[str, tuple[str, str, str]] | None = None,
    stt_engine: Any = None,
    tts_engine: Any = None,
    use_cache: bool = True,
) -> Run:
    """``rounds`` rounds of the three turns, with the new behaviour on or off.

    ``flow`` and ``kinds`` (question, answer said, reply) are the calls' flow and
    turns; ``stt_engine``/``tts_engine`` the engines (default offline: the
    cloud engines against local servers in bench.bench_cloud_turns);
    ``use_cache`` False keeps the prompt cache off even when ``new``."""
    kinds = kinds or KINDS
    callers = {kind: _caller(said) for kind, (_q, said, _a) in kinds.items()}
    bus = MemoryVoiceBus()
    worker_thread = _Thread()
    queue = f"bench-agent-{uuid.uuid4().hex[:8]}"
    services = RuntimeServices(voice_bus=bus)

    async def start_worker() -> Any:
        client = await connect_client(settings)
        worker = create_worker(client, services, WorkerOptions(task_queue=queue, graceful_shutdown=1))
        asyncio.ensure_future(worker.run())
        return worker

    worker = await worker_thread.run(start_worker())
    client = await connect_client(settings)
    call_id = f"bench-{uuid.uuid4().hex[:10]}"
    graph = _graph(flow)
    cache: PromptCache | None = None
    if new and use_cache:
        cache = PromptCache(DiskStore(cache_dir, 64 * 1024 * 1024))
        await cache.prepare(graph_prompts(graph), OfflineTTS(sample_rate=RATE))
    options = HarnessOptions(turns=TurnOptions(end_of_turn=EndOfTurn(enabled=new)))
    run = Run("after" if new else "before", {kind: [] for kind in kinds}, cache)
    try:
        async with AudioHarness(
            options=options, prompt_cache=cache, stt_engine=stt_engine, tts_engine=tts_engine
        ) as call:
            agent = BusAgent(bus, call_id, call.voice, LocalCallControl())
            agent.start()
            watch = _Commands(bus, call_id, call)
            await start_call(client, graph, call_id, task_queue=queue)
            after = 0.0
            for round_number in range(rounds + 1):
                for kind, (question, _said, answer) in kinds.items():
                    caller, sound_end = callers[kind]
                    asked_at, asked = await watch.next(Speak, lambda s, q=question: s.text == q, after)
                    rid = asked.request_id
                    done_at, _ = await watch.next(
                        TtsComplete, lambda e, rid=rid: e.request_id == rid, asked_at, source="events"
                    )
                    await call.wait_until(done_at + ANSWER_DELAY)
                    speech_end = call.play_caller(caller) + sound_end
                    decided = await call.wait_for_event("stt_end_of_speech", after=speech_end - 0.3)
                    # A streaming recogniser's final transcript comes before its end of speech.
                    ready = [e for e in call.events_of("stt") if speech_end - 0.3 <= e.at <= decided.at]
                    final_at = (
                        decided.at if ready else (await call.wait_for_event("stt", after=decided.at)).at
                    )
                    spoke_at, _spoke = await watch.next(
                        Speak, lambda s, a=answer: s.text == a, final_at - 0.01
                    )
                    heard = await _first_audio_after(call, spoke_at)
                    if round_number:  # the first round warms everything up
                        run.turns[kind].append(
                            Turn(
                                decided.at - speech_end,
                                final_at - decided.at,
                                spoke_at - final_at,
                                heard - spoke_at,
                            )
                        )
                        if cache is not None:
                            run.cached_first_audio.append(heard - spoke_at)
                    after = spoke_at
            agent.caller_left("the benchmark is over")
            await asyncio.sleep(0.5)
            watch.close()
    finally:
        await worker_thread.run(worker.shutdown())
        await worker_thread.run(services.close())
        worker_thread.close()
    return run


async def _first_audio_after(call: AudioHarness, at: float, timeout: float = 10.0) -> float:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        for segment in call.speaker.segments:
            if segment.started_at is not None and segment.started_at >= at:
                return segment.started_at
        await asyncio.sleep(0.002)
    raise TimeoutError("the answer was never heard")


def _ms(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return statistics.median(values) * 1000, p90 * 1000


TARGETS_MS = {"menu answer": 400.0, "yes/no": 400.0, "free speech": 700.0}
CACHED_FIRST_AUDIO_MS = 5.0


def report(before: Run, after: Run, server: str) -> bool:
    rounds = len(next(iter(after.turns.values())))
    print(
        f"end of caller speech → first agent audio: offline engines, {rounds} rounds of "
        f"three turns, Temporal on {server}"
    )
    print("before: the whole end_silence_ms of VAD silence, then recognition; no prompt cache")
    print("after:  end of turn from the expected phrases, recognition ahead, prompt cache")
    ok = True
    for kind in KINDS:
        print(f"\n{kind} ({KINDS[kind][1]!r})")
        print(f"  {'part (median ms)':26} {'before':>8} {'after':>8}")
        for index, name in enumerate(PARTS):
            old = _ms([t.parts[index] for t in before.turns[kind]])[0]
            new = _ms([t.parts[index] for t in after.turns[kind]])[0]
            print(f"  {name:26} {old:8.0f} {new:8.0f}")
        old_median, old_p90 = _ms([t.total for t in before.turns[kind]])
        new_median, new_p90 = _ms([t.total for t in after.turns[kind]])
        met = new_median <= TARGETS_MS[kind]
        ok = ok and met
        print(
            f"  {'whole (median)':26} {old_median:8.0f} {new_median:8.0f}   "
            f"{old_median / new_median:.2f}x faster; target ≤ {TARGETS_MS[kind]:.0f} ms: "
            f"{'met' if met else 'MISSED'}"
        )
        print(f"  {'whole (p90)':26} {old_p90:8.0f} {new_p90:8.0f}")
    if after.cache is not None:
        stats = after.cache.stats
        first = _ms(after.cached_first_audio)[0]
        met = first <= CACHED_FIRST_AUDIO_MS
        ok = ok and met
        print(
            f"\nprompt cache (after): {stats.hits} hits, {stats.misses} misses, hit rate "
            f"{stats.hit_rate * 100:.0f}%; {stats.prepared} prompts prepared when the flow "
            f"was loaded; first audio of a cached prompt {first:.1f} ms median (target ≤ "
            f"{CACHED_FIRST_AUDIO_MS:.0f} ms: {'met' if met else 'MISSED'})"
        )
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--rounds", type=int, default=10, help="measured rounds of the three turns (default 10)"
    )
    args = parser.parse_args(argv)
    settings = temporal_settings_from_env()

    async def both(temporal: TemporalSettings) -> tuple[Run, Run]:
        with tempfile.TemporaryDirectory(prefix="bench-prompt-cache-") as folder:
            before = await measure(temporal, args.rounds, new=False, cache_dir=Path(folder))
            after = await measure(temporal, args.rounds, new=True, cache_dir=Path(folder))
        return before, after

    if settings.address is not None:
        before, after = asyncio.run(both(settings))
        ok = report(before, after, settings.address)
    else:
        with EmbeddedTemporal() as server:
            before, after = asyncio.run(both(server.settings()))
            ok = report(before, after, f"the embedded dev server ({server.address})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
