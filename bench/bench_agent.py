"""End of the caller's speech → the agent's first audio frame, on the audio harness.

Run: ``python -m bench.bench_agent [--rounds 10] [--human-audio DIR]`` (starts the
embedded Temporal dev server, or uses ``TEMPORAL_ADDRESS`` when set). Offline
engines (Silero VAD, pocketsphinx, espeak-ng), real time, the real engine path: a
Temporal worker (on its own thread, as it would be its own process) runs a flow
that asks three kinds of question in turn, and the caller (espeak) answers each
0.3 s after it is asked:

menu answer
    "Say balance." → "balance" (a voice_menu's phrase) → "Balance it is: 3 dollars."
    (templated: the round number, which a set node before the menu counts, so the
    text is new every round and only preparing it ahead can make it a cache hit)
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

The same calls run up to four times in one run:

before
    the new behaviour off: end of turn after the whole end_silence_ms of VAD
    silence, then recognition; no prompt cache.
after
    engine.agent.turns (a whole expected phrase ends the turn after a short
    silence, speech recognised ahead of the end silence); engine.agent.prompt_cache
    prepared with the flow's fixed prompts, as ``voxflow dev`` does when it loads a
    flow; what may be said next prepared while the caller answers
    (engine.agent.next_prompts).
after, no prepare-next
    "after" without that last part (``VOXFLOW_PREPARE_NEXT=off``): the templated
    reply's first audio with and without preparing ahead is read from these two.
after + model
    "after" with the Smart Turn end-of-turn model (engine.agent.smart_turn; fetched
    once with ``voxflow models fetch smart-turn``) asked about free speech once its
    silence is 0.2 s long; free speech's end of turn is split again into VAD silence
    (the caller's last sound → the model is asked, or → the turn ends without it)
    and the model's time. Run only when the model is on this machine.

The first round of each warms up and is not counted; figures are medians, 90th
percentiles and ranges, with the share of replies said from the prompt cache.
The targets are judged on the whole new behaviour ("after + model", or "after"
without the model). Last, bench.bench_turn_model counts the model's false early
ends on recordings of real people (``--human-audio DIR`` or ``VOXFLOW_HUMAN_AUDIO``).

bench.bench_cloud_turns and bench.bench_browser_call reuse :func:`measure` with
their own flow, turns and engines.

Targets (issue 16): menu and yes/no ≤ 400 ms, free speech ≤ 700 ms, a cached
prompt's first audio ≤ 5 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import sys
import tempfile
import textwrap
import threading
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

if __package__ in (None, ""):  # run as a script: python bench/bench_agent.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from bench import bench_turn_model
from engine.agent import espeak, smart_turn, turn_model_file, wav
from engine.agent.bus_agent import BusAgent, BusAgentOptions
from engine.agent.control import LocalCallControl
from engine.agent.harness import AudioHarness, HarnessOptions
from engine.agent.offline_tts import OfflineTTS
from engine.agent.prompt_cache import DiskStore, PromptCache
from engine.agent.session import TurnOptions
from engine.agent.turns import EndOfTurn, ExpectingSTT, TurnModel
from engine.language.compile import FlowGraph, compile_flow
from engine.language.load import load_text
from engine.language.registry import default_registry
from engine.language.upcoming import graph_prompts
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
from engine.voice.messages import Speak, TtsComplete, TtsStarted

RATE = 16000
ANSWER_DELAY = 0.3
FLOW = textwrap.dedent("""\
    flow: bench-agent
    start: count
    variables:
      round: {default: 0}
    nodes:
      count:
        type: set
        values: {round: "${round + 1}"}
        next: ask
        max_visits: 1000
      ask:
        type: voice_menu
        prompt: "Say balance."
        options:
          - {phrases: [balance, agent], next: answer}
        max_visits: 1000
      answer:
        type: voice_speak
        message: "Balance it is: ${round} dollars."
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
        next: count
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
Kinds = dict[str, tuple[str, str, str]]
# (question, what the caller says, the reply's first words)
KINDS: Kinds = {
    "menu answer": ("Say balance.", "balance", "Balance it is"),
    "yes/no": ("Is that right?", "yes", "Noted."),
    "free speech": ("Tell me what happened.", "I lost my card yesterday", "Thank you."),
}
PARTS = ("end of turn", "STT", "engine (bus + workflow)", "TTS first audio")
TEMPLATED = "menu answer"  # the kind whose reply is templated (new text every round)
BEFORE, AFTER, NO_PREPARE, MODEL = "before", "after", "after, no prepare-next", "after + model"
SHORT = {NO_PREPARE: "no prep", MODEL: "+model"}
TARGETS_MS = {"menu answer": 400.0, "yes/no": 400.0, "free speech": 700.0}
CACHED_FIRST_AUDIO_MS = 5.0
_T = TypeVar("_T")


@dataclass(frozen=True)
class Turn:
    vad: float
    stt: float
    engine: float
    tts: float
    model: float = 0.0  # of ``vad``: the turn model's time, when it ended the turn
    cached: bool = False  # the reply's audio came from the prompt cache

    @property
    def parts(self) -> tuple[float, float, float, float]:
        return (self.vad, self.stt, self.engine, self.tts)

    @property
    def total(self) -> float:
        return sum(self.parts)


@dataclass
class Run:
    """One configuration's measured turns, by kind, and its prompt cache."""

    name: str
    turns: dict[str, list[Turn]]
    cache: PromptCache | None = None

    def hit_rate(self, kind: str) -> float:
        turns = self.turns[kind]
        return sum(turn.cached for turn in turns) / len(turns) if turns else 0.0

    def cached_first_audio(self) -> list[float]:
        """Speak command → first frame heard, of the replies said from the cache."""
        return [turn.tts for turns in self.turns.values() for turn in turns if turn.cached]


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
    """The call's commands and events as the bus delivers them, with their harness times."""

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


def _caller(text: str) -> tuple[np.ndarray, float]:
    pcm, rate = espeak.synthesize_pcm(text)
    samples = np.frombuffer(wav.resample(pcm, rate, RATE), dtype=np.int16)
    return samples, wav.sound_spans(samples, RATE)[-1][1]


def _run_name(new: bool, prepare_next: bool, turn_model: TurnModel | None) -> str:
    if not new:
        return BEFORE
    return MODEL if turn_model is not None else AFTER if prepare_next else NO_PREPARE


async def _prepared_cache(graph: FlowGraph, folder: Path) -> PromptCache:
    """A prompt cache of its own (so no run reads what another prepared), filled with the
    flow's fixed prompts, as ``voxflow dev`` does when it loads a flow."""
    cache = PromptCache(DiskStore(folder, 64 * 1024 * 1024))
    await cache.prepare(graph_prompts(graph), OfflineTTS(sample_rate=RATE))
    return cache


async def measure(
    settings: TemporalSettings,
    rounds: int,
    *,
    new: bool,
    cache_dir: Path,
    prepare_next: bool = True,
    turn_model: TurnModel | None = None,
    flow: str = FLOW,
    kinds: Kinds | None = None,
    stt_engine: Any = None,
    tts_engine: Any = None,
    use_cache: bool = True,
) -> Run:
    """``rounds`` rounds of the turns, with the new behaviour on or off (and, with it on,
    preparing what may be said next on or off, and the turn model if given).

    ``flow`` and ``kinds`` (question, answer said, the reply's first words) are the
    calls' flow and turns; ``stt_engine``/``tts_engine`` the engines (default offline:
    bench.bench_cloud_turns gives the cloud engines against local servers);
    ``use_cache`` False keeps the prompt cache off even when ``new``."""
    kinds = kinds or KINDS
    name = _run_name(new, prepare_next, turn_model)
    callers = {kind: _caller(said) for kind, (_q, said, _a) in kinds.items()}
    graph = _graph(flow)
    cache = await _prepared_cache(graph, cache_dir / name.replace(" ", "-")) if new and use_cache else None
    bus = MemoryVoiceBus()
    services = RuntimeServices(voice_bus=bus)
    queue = f"bench-agent-{uuid.uuid4().hex[:8]}"
    worker_thread = _Thread()

    async def start_worker() -> Any:
        client = await connect_client(settings)
        worker = create_worker(client, services, WorkerOptions(task_queue=queue, graceful_shutdown=1))
        asyncio.ensure_future(worker.run())
        return worker

    worker = await worker_thread.run(start_worker())
    client = await connect_client(settings)
    call_id = f"bench-{uuid.uuid4().hex[:10]}"
    end_of_turn = EndOfTurn(enabled=new, model=turn_model)
    options = HarnessOptions(turns=TurnOptions(end_of_turn=end_of_turn))
    run = Run(name, {kind: [] for kind in kinds}, cache)
    try:
        async with AudioHarness(
            options=options, prompt_cache=cache, stt_engine=stt_engine, tts_engine=tts_engine
        ) as call:
            agent_options = BusAgentOptions(prepare_next=new and prepare_next)
            agent = BusAgent(bus, call_id, call.voice, LocalCallControl(), options=agent_options)
            agent.start()
            watch = _Commands(bus, call_id, call)
            await start_call(client, graph, call_id, task_queue=queue)
            after = 0.0
            for round_number in range(rounds + 1):
                for kind, (question, _said, reply) in kinds.items():
                    turn, after = await _one_turn(
                        call, watch, callers[kind], question, reply, after, end_of_turn.model_threshold
                    )
                    if round_number:  # the first round warms everything up
                        run.turns[kind].append(turn)
            agent.caller_left("the benchmark is over")
            await asyncio.sleep(0.5)
            watch.close()
    finally:
        await worker_thread.run(worker.shutdown())
        await worker_thread.run(services.close())
        worker_thread.close()
    return run


async def _one_turn(
    call: AudioHarness,
    watch: _Commands,
    caller: tuple[np.ndarray, float],
    question: str,
    reply: str,
    after: float,
    model_threshold: float,
) -> tuple[Turn, float]:
    """The question asked (after ``after``), answered 0.3 s after it ends, and the reply
    heard: the turn's parts, and when the reply was asked for."""
    asked_at, asked = await watch.next(Speak, lambda s: s.text == question, after)
    done_at, _ = await watch.next(
        TtsComplete, lambda e: e.request_id == asked.request_id, asked_at, source="events"
    )
    await call.wait_until(done_at + ANSWER_DELAY)
    checks_before = len(_model_checks(call))
    samples, sound_end = caller
    speech_end = call.play_caller(samples) + sound_end
    decided = await call.wait_for_event("stt_end_of_speech", after=speech_end - 0.3)
    # A streaming recogniser's final transcript comes before its end of speech.
    ready = [e for e in call.events_of("stt") if speech_end - 0.3 <= e.at <= decided.at]
    final_at = decided.at if ready else (await call.wait_for_event("stt", after=decided.at)).at
    spoke_at, spoke = await watch.next(Speak, lambda s: s.text.startswith(reply), final_at - 0.01)
    heard = await _first_audio_after(call, spoke_at)
    _, started = await watch.next(
        TtsStarted, lambda e: e.request_id == spoke.request_id, 0.0, source="events"
    )
    checks = _model_checks(call)[checks_before:]
    by_model = bool(checks) and checks[-1].probability >= model_threshold
    turn = Turn(
        decided.at - speech_end,
        final_at - decided.at,
        spoke_at - final_at,
        heard - spoke_at,
        model=checks[-1].seconds if by_model else 0.0,
        cached=bool(started.cached),
    )
    return turn, spoke_at


def _model_checks(call: AudioHarness) -> list[Any]:
    """The turn model's checks so far (none on a cloud recogniser's turns)."""
    turns = call.voice.turns
    return list(turns.stats.model_checks) if isinstance(turns, ExpectingSTT) else []


async def _first_audio_after(call: AudioHarness, at: float, timeout: float = 10.0) -> float:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        for segment in call.speaker.segments:
            if segment.started_at is not None and segment.started_at >= at:
                return segment.started_at
        await asyncio.sleep(0.002)
    raise TimeoutError("the answer was never heard")


# ---------------------------------------------------------------------------- report


def _ms(values: list[float]) -> tuple[float, float]:
    """Median and 90th percentile, in ms."""
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return statistics.median(values) * 1000, p90 * 1000


def _range_ms(values: list[float]) -> str:
    return f"{min(values) * 1000:.0f}–{max(values) * 1000:.0f}"


def _short(name: str) -> str:
    return SHORT.get(name, name)


def _row(label: str, cells: list[str]) -> str:
    return f"  {label:26}" + "".join(f" {cell:>11}" for cell in cells)


def _part(turn: Turn, index: int) -> float:
    return turn.parts[index]


def _medians(runs: list[Run], kind: str, value: Callable[[Turn], float]) -> list[str]:
    """One cell per run: the median (ms) of ``value`` over its turns of ``kind``."""
    return [f"{_ms([value(turn) for turn in run.turns[kind]])[0]:.0f}" for run in runs]


def report(runs: list[Run], server: str) -> bool:
    """The figures of ``runs`` side by side (the first, "before", is the baseline); the
    targets are judged on the whole new behaviour ("after + model", else "after")."""
    by_name = {run.name: run for run in runs}
    judged = by_name.get(MODEL) or by_name[AFTER]
    rounds = len(next(iter(judged.turns.values())))
    print(
        f"end of caller speech → first agent audio: offline engines, {rounds} rounds of "
        f"three turns, Temporal on {server}"
    )
    print("before:  the whole end_silence_ms of VAD silence, then recognition; no prompt cache")
    print("after:   end of turn from the expected phrases, recognition ahead, prompt cache (fixed")
    print("         prompts prepared when the flow loads, what may come next while the caller answers)")
    print("no prep: after, with VOXFLOW_PREPARE_NEXT=off")
    if MODEL in by_name:
        print("+model:  after, and the Smart Turn model asked about free speech at 0.2 s of silence")
    print(f"targets judged on: {_short(judged.name)}")
    ok = True
    for kind in KINDS:
        print(f"\n{kind} ({KINDS[kind][1]!r} → {KINDS[kind][2]!r}...)")
        print(_row("part (median ms)", [_short(run.name) for run in runs]))
        for index, part in enumerate(PARTS):
            print(_row(part, _medians(runs, kind, functools.partial(_part, index=index))))
            if kind == "free speech" and index == 0:
                print(_row("  VAD silence", _medians(runs, kind, lambda t: t.vad - t.model)))
                print(_row("  turn model", _medians(runs, kind, lambda t: t.model)))
        whole = {run.name: [t.total for t in run.turns[kind]] for run in runs}
        print(_row("whole (median)", [f"{_ms(whole[run.name])[0]:.0f}" for run in runs]))
        print(_row("whole (p90)", [f"{_ms(whole[run.name])[1]:.0f}" for run in runs]))
        print(_row("whole (range)", [_range_ms(whole[run.name]) for run in runs]))
        print(_row("reply from the cache", [f"{run.hit_rate(kind) * 100:.0f}%" for run in runs]))
        base, new = _ms(whole[BEFORE])[0], _ms(whole[judged.name])[0]
        met = new <= TARGETS_MS[kind]
        ok = ok and met
        print(
            f"  {_short(judged.name)}: {base / new:.2f}x faster than before; target ≤ "
            f"{TARGETS_MS[kind]:.0f} ms: {'met' if met else 'MISSED'}"
        )
    if NO_PREPARE in by_name:
        on = _ms([t.tts for t in by_name[AFTER].turns[TEMPLATED]])[0]
        off = _ms([t.tts for t in by_name[NO_PREPARE].turns[TEMPLATED]])[0]
        print(
            f"\nreply to a templated prompt ({KINDS[TEMPLATED][2]!r}..., new text every round): TTS "
            f"first audio {on:.1f} ms median with prepare-next, {off:.1f} ms without ({off / on:.1f}x); "
            f"from the cache {by_name[AFTER].hit_rate(TEMPLATED) * 100:.0f}% vs "
            f"{by_name[NO_PREPARE].hit_rate(TEMPLATED) * 100:.0f}%"
        )
    for run in runs:
        if run.cache is None:
            continue
        stats = run.cache.stats
        first = run.cached_first_audio()
        print(
            f"prompt cache ({_short(run.name)}): {stats.hits} hits, {stats.misses} misses, hit rate "
            f"{stats.hit_rate * 100:.0f}%; {stats.prepared} prompts prepared ({stats.prepared_next} "
            f"while the caller answered, {stats.skipped_next} not ready when the answer came); "
            f"first audio of a cached reply "
            + (f"{_ms(first)[0]:.1f} ms median" if first else "(none cached)")
        )
    cached = judged.cached_first_audio()
    met = bool(cached) and _ms(cached)[0] <= CACHED_FIRST_AUDIO_MS
    ok = ok and met
    print(
        f"cached reply's first audio ({_short(judged.name)}): "
        + (f"{_ms(cached)[0]:.1f} ms median" if cached else "no reply was cached")
        + f"; target ≤ {CACHED_FIRST_AUDIO_MS:.0f} ms: {'met' if met else 'MISSED'}"
    )
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--rounds", type=int, default=10, help="measured rounds of the three turns (default 10)"
    )
    parser.add_argument(
        "--human-audio",
        type=Path,
        default=None,
        help="a folder of recordings of real people (.wav, one answer each) for the turn model's "
        f"false-early-end count (default: ${bench_turn_model.HUMAN_AUDIO_ENV}; without either "
        "it is not counted)",
    )
    args = parser.parse_args(argv)
    human_audio = bench_turn_model.human_audio_folder(args.human_audio)
    settings = temporal_settings_from_env()
    model_path = turn_model_file.find()
    turn_model = smart_turn.load(model_path) if model_path is not None else None
    if turn_model is None:
        print(
            f"(the Smart Turn model is not on this machine: run '{turn_model_file.FETCH_COMMAND}' "
            "to measure it too)\n"
        )

    async def all_runs(temporal: TemporalSettings) -> list[Run]:
        configurations: list[dict[str, Any]] = [
            {"new": False},
            {"new": True},
            {"new": True, "prepare_next": False},
        ]
        if turn_model is not None:
            configurations.append({"new": True, "turn_model": turn_model})
        with tempfile.TemporaryDirectory(prefix="bench-prompt-cache-") as folder:
            return [
                await measure(temporal, args.rounds, cache_dir=Path(folder), **configuration)
                for configuration in configurations
            ]

    if settings.address is not None:
        ok = report(asyncio.run(all_runs(settings)), settings.address)
    else:
        with EmbeddedTemporal() as server:
            runs = asyncio.run(all_runs(server.settings()))
            ok = report(runs, f"the embedded dev server ({server.address})")
    if turn_model is not None:
        print()
        bench_turn_model.run_and_report(turn_model, human_audio)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
