"""A voice turn's engine overhead, and how many calls one worker process holds.

Run: ``python -m bench.bench_voice`` (starts the embedded Temporal dev server
unless ``TEMPORAL_ADDRESS`` is set, and an embedded redis-server unless
``REDIS_URL`` is set). Everything is measured in the same run:

bare activity round trip
    an empty workflow awaiting empty activities one after another (bench/bare.py),
    timed from one activity's start to the next's: what Temporal itself costs
    per step (an activity completing, a workflow task, the next activity starting).
turn overhead
    a call loops ``voice_listen`` → ``voice_speak`` → ``voice_listen``...; a
    simulated caller answers each question, and the overhead of a turn is the
    time from publishing its final transcript (``speech:complete``) on the
    voice bus to reading the next ``speak`` command from the bus. It covers the
    listen node returning, the workflow choosing the next node, the speak
    node's activity starting, rendering its text and sending the command. One
    call at a time, with the in-memory bus (caller and worker in this process)
    and with the Redis bus; reported as a ratio to the bare round trip.
calls per worker
    N calls at once on one worker process (its own process, Redis bus; the
    callers in this process, as LiveKit agents would be), each caller answering
    ``--think`` seconds after every question; N steps up until the turn
    overhead's p95 passes 100 ms. Target: at least 200 calls on a 2-core machine.

A waiting ``voice_listen`` holds one activity slot for as long as the caller
takes to answer, so the worker here allows ``--slots`` concurrent activities
(the ``voxflow worker`` default, 200, would cap the calls below 200).

Knobs for finding where the time goes: ``--transfer-rps 20`` puts back the
dev server's own limit of 20 transfer-queue reads a second, which voxflow's
embedded server lifts to 1000 (engine.runtime.temporal_server.DEV_SERVER_DYNAMIC_CONFIG;
the limit alone adds up to 50 ms to every workflow step), ``--no-sandbox`` runs the load
worker's workflows outside Temporal's sandbox, ``--heartbeat-throttle``. Each
step's row shows the CPU used by the worker process, the Temporal server and
the callers, in % of one core.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import multiprocessing
import os
import statistics
import sys
import tempfile
import textwrap
import time
import uuid
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event as ProcessEvent
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python bench/bench_voice.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from temporalio import activity
from temporalio.client import Client

from bench.bare import BareWorkflow
from engine.language.compile import FlowGraph
from engine.language.project import compile_paths
from engine.runtime.calls import start_call
from engine.runtime.messages import CallOptions
from engine.runtime.services import RuntimeServices
from engine.runtime.temporal_server import (
    DEV_SERVER_DYNAMIC_CONFIG,
    EmbeddedTemporal,
    TemporalSettings,
    connect_client,
    temporal_settings_from_env,
)
from engine.runtime.worker import WorkerOptions, create_worker, freeze_startup_objects
from engine.simulate.logs import default_log_file, send_logs_to_file
from engine.simulate.session import redis_url_from_env
from engine.voice.bus import START, StreamCursor, VoiceBus
from engine.voice.memory_bus import MemoryVoiceBus
from engine.voice.messages import (
    AgentJoined,
    CallerLeft,
    Command,
    Hangup,
    HangupComplete,
    Listen,
    Speak,
    SpeechComplete,
    SpeechStarted,
    TtsComplete,
    TtsStarted,
)
from engine.voice.redis_bus import RedisVoiceBus
from engine.voice.redis_server import EmbeddedRedis

P95_LIMIT = 0.100
IDLE_READ = 2.0  # seconds a caller waits for a command before looking again
TARGET_CALLS = 200
FLOW = textwrap.dedent("""\
    flow: bench-voice
    description: A caller and the agent take turns, for ever.
    settings: {no_input_timeout: 60s, silence_check_after: 1h}
    start: ask
    nodes:
      ask:
        type: voice_listen
        prompt: "What would you like?"
        save_as: heard
        max_visits: 100000
        next: reply
        no_input:
          - next: goodbye
      reply:
        type: voice_speak
        message: "You said ${heard.transcript}."
        max_visits: 100000
        next: ask
      goodbye:
        type: voice_hangup
    """)


@dataclass
class Turns:
    """Turn overheads (seconds) measured by the callers, and when each was measured."""

    samples: list[tuple[float, float]] = field(default_factory=list)  # (at, overhead)
    errors: int = 0
    started: float = 0.0  # when the last call had started

    def since(self, start: float) -> list[float]:
        return [overhead for at, overhead in self.samples if at >= start]


async def caller(
    bus: VoiceBus, call_id: str, turns: Turns, think: float, stop: asyncio.Event, limit: int | None = None
) -> None:
    """The agent side of one call: says every prompt at once, answers ``think`` s after it."""
    cursor: StreamCursor[Command] = StreamCursor(functools.partial(bus.read_commands, call_id), START)
    await bus.publish_event(call_id, AgentJoined(agent_id="bench"))
    listening: str | None = None
    answer_at: float | None = None
    sent_at: float | None = None
    done = 0
    loop = asyncio.get_running_loop()
    while True:
        if answer_at is not None and loop.time() >= answer_at and listening is not None:
            if stop.is_set() or (limit is not None and done >= limit):
                await bus.publish_event(call_id, CallerLeft(reason="the bench is done"))
                return
            await bus.publish_event(call_id, SpeechStarted(request_id=listening))
            sent_at = time.perf_counter()
            await bus.publish_event(
                call_id, SpeechComplete(request_id=listening, transcript="a coffee please", confidence=0.9)
            )
            listening = answer_at = None
        wait = IDLE_READ if answer_at is None else max(answer_at - loop.time(), 0.0)
        entry = await cursor.next(wait)
        if entry is None:
            continue
        command = entry[1]
        if isinstance(command, Speak):
            if sent_at is not None:
                turns.samples.append((time.perf_counter(), time.perf_counter() - sent_at))
                sent_at = None
                done += 1
            await bus.publish_event(call_id, TtsStarted(request_id=command.request_id))
            await bus.publish_event(call_id, TtsComplete(request_id=command.request_id))
            if listening is not None:
                answer_at = loop.time() + think  # the caller answers after hearing the question
        elif isinstance(command, Listen):
            listening = command.request_id
        elif isinstance(command, Hangup):
            await bus.publish_event(call_id, HangupComplete(request_id=command.request_id))
            return


async def run_calls(
    client: Client,
    graph: FlowGraph,
    bus: VoiceBus,
    task_queue: str,
    count: int,
    think: float,
    seconds: float | None,
    turns_each: int | None = None,
    ramp: float | None = None,
) -> Turns:
    """``count`` calls at once, their starts spread over ``ramp`` seconds (default: one think
    time); with ``seconds``, they go on that long after the last one started."""
    turns = Turns()
    stop = asyncio.Event()
    tasks = []
    ramp = think if ramp is None else ramp
    for _ in range(count):
        call_id = f"bench-{uuid.uuid4().hex[:12]}"
        tasks.append(asyncio.ensure_future(caller(bus, call_id, turns, think, stop, turns_each)))
        await start_call(
            client, graph, call_id, task_queue=task_queue, options=CallOptions(history_event_limit=50_000)
        )
        await asyncio.sleep(ramp / max(count, 1))
    turns.started = time.perf_counter()
    if seconds is not None:
        await asyncio.sleep(seconds)
        stop.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    turns.errors = sum(isinstance(r, BaseException) for r in results)
    return turns


_BARE_STARTS: list[float] = []


@activity.defn(name="bench_empty")  # what BareWorkflow calls, timed here
async def timed_empty_activity() -> None:
    _BARE_STARTS.append(time.perf_counter())


async def bare_round_trips(client: Client, task_queue: str, activities: int) -> list[float]:
    """From one empty activity's start to the next's: what Temporal costs per step.

    Timed from the activities, not around the workflow, so the workflow's start
    (and its sandbox) is not spread over the steps.
    """
    _BARE_STARTS.clear()
    await client.execute_workflow(
        BareWorkflow.run, activities, id=f"bench-bare-{uuid.uuid4()}", task_queue=task_queue
    )
    return [later - earlier for earlier, later in zip(_BARE_STARTS[:-1], _BARE_STARTS[1:], strict=True)]


# ---- the worker process for the calls-per-worker steps -----------------------


def worker_process(
    settings: TemporalSettings,
    redis_url: str,
    options: WorkerOptions,
    ready: ProcessEvent,
    stop: ProcessEvent,
) -> None:
    send_logs_to_file(default_log_file("bench-worker"))
    asyncio.run(_serve(settings, redis_url, options, ready, stop))


async def _serve(
    settings: TemporalSettings,
    redis_url: str,
    options: WorkerOptions,
    ready: ProcessEvent,
    stop: ProcessEvent,
) -> None:
    client = await connect_client(settings)
    services = RuntimeServices(voice_bus=RedisVoiceBus.from_url(redis_url))
    async with create_worker(client, services, options):
        freeze_startup_objects()  # as voxflow worker does
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.2)
    await services.close()
    del client
    gc.collect()
    await asyncio.sleep(0.3)  # temporalio/sdk-python#300, as in measure()


# ---- the run -------------------------------------------------------------------


@dataclass
class Report:
    bare: list[float] = field(default_factory=list)
    memory: list[float] = field(default_factory=list)
    redis: list[float] = field(default_factory=list)
    steps: list[tuple[int, list[float], int]] = field(default_factory=list)  # calls, overheads, errors


async def measure(
    settings: TemporalSettings,
    redis_url: str,
    args: argparse.Namespace,
    graph: FlowGraph,
    server_pid: int | None,
) -> Report:
    report = Report()
    client = await connect_client(settings)
    queue = f"bench-voice-{uuid.uuid4().hex[:8]}"
    memory_bus = MemoryVoiceBus()
    services = RuntimeServices(voice_bus=memory_bus)
    worker = create_worker(
        client,
        services,
        WorkerOptions(task_queue=queue),
        extra_workflows=[BareWorkflow],
        extra_activities=[timed_empty_activity],
    )
    redis_queue = f"bench-voice-redis-{uuid.uuid4().hex[:8]}"
    redis_worker_bus = RedisVoiceBus.from_url(redis_url)
    redis_services = RuntimeServices(voice_bus=redis_worker_bus)
    redis_worker = create_worker(client, redis_services, WorkerOptions(task_queue=redis_queue))
    caller_bus = RedisVoiceBus.from_url(redis_url)
    async with worker, redis_worker:
        await run_calls(client, graph, memory_bus, queue, 1, 0.01, None, 5)  # warm up
        for _ in range(args.rounds):  # interleaved, so drift hits all three alike
            report.bare += await bare_round_trips(client, queue, args.turns)
            memory = await run_calls(client, graph, memory_bus, queue, 1, 0.01, None, args.turns)
            report.memory += memory.since(0)
            on_redis = await run_calls(client, graph, caller_bus, redis_queue, 1, 0.01, None, args.turns)
            report.redis += on_redis.since(0)
    await caller_bus.close()
    await services.close()
    await redis_services.close()
    print(_overhead_table(report), flush=True)
    print(flush=True)
    await _calls_per_worker(client, settings, redis_url, graph, args, report, server_pid)
    # Let the SDK's native threads finish while the loop runs (temporalio/sdk-python#300).
    del client, worker, redis_worker
    gc.collect()
    await asyncio.sleep(0.5)
    return report


async def _calls_per_worker(
    client: Client,
    settings: TemporalSettings,
    redis_url: str,
    graph: FlowGraph,
    args: argparse.Namespace,
    report: Report,
    server_pid: int | None,
) -> None:
    queue = f"bench-voice-load-{uuid.uuid4().hex[:8]}"
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Event(), context.Event()
    options = WorkerOptions(
        task_queue=queue,
        max_concurrent_activities=args.slots,
        max_concurrent_workflow_tasks=200,
        heartbeat_throttle=args.heartbeat_throttle,
        sandboxed=not args.no_sandbox,
    )
    process = context.Process(target=worker_process, args=(settings, redis_url, options, ready, stop))
    process.start()
    bus = RedisVoiceBus.from_url(redis_url)
    try:
        if not await asyncio.to_thread(ready.wait, 60):
            raise RuntimeError("the worker process did not start")
        print(
            f"calls at once on one worker process (Redis bus; each caller answers "
            f"{args.think:g} s after each question; {args.seconds:g} s measured per step)",
            flush=True,
        )
        print(f"  {'calls':>6}  {'turns/s':>7}  {'p50':>8}  {'p95':>8}  {'p99':>8}  result", flush=True)
        meter = CpuMeter({"worker": process.pid, "server": server_pid, "callers": os.getpid()})
        for count in args.calls:
            # Calls start a few per second (each new call costs the worker a workflow
            # sandbox); the steady state is measured from one think time after the last.
            ramp = max(args.think, count / args.starts_per_second)
            measuring = asyncio.get_running_loop().call_later(ramp + args.think, meter.restart)
            turns = await run_calls(
                client, graph, bus, queue, count, args.think, args.seconds + args.think, ramp=ramp
            )
            measuring.cancel()
            overheads = turns.since(turns.started + args.think)
            report.steps.append((count, overheads, turns.errors))
            print(
                "  "
                + _step_row(count, overheads, turns.errors, args.seconds)
                + f"  (cpu: {meter.percent()})",
                flush=True,
            )
            if not overheads or _percentile(overheads, 95) > P95_LIMIT:
                break
    finally:
        stop.set()
        await asyncio.to_thread(process.join, 30)
        if process.is_alive():
            process.terminate()
        await bus.close()


def _cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of a process so far (Linux /proc); None elsewhere."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class CpuMeter:
    """How busy some processes were between two readings, in % of one core."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = pids
        self._start = self._read()

    def _read(self) -> tuple[float, dict[str, float | None]]:
        return time.perf_counter(), {name: _cpu_seconds(pid) for name, pid in self.pids.items()}

    def restart(self) -> None:
        self._start = self._read()

    def percent(self) -> str:
        began, before = self._start
        now, after = self._read()
        parts = []
        for name in self.pids:
            first, last = before[name], after[name]
            if first is not None and last is not None:
                parts.append(f"{name} {100 * (last - first) / (now - began):.0f}%")
        return ", ".join(parts)


def _percentile(values: list[float], percent: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(percent / 100 * len(ordered)) - 1))
    return ordered[index]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:6.1f} ms"


def _overhead_table(report: Report) -> str:
    bare = statistics.median(report.bare)
    rows = [
        f"voice turn overhead (speech:complete on the bus → next speak command), one call; "
        f"median of {len(report.memory)} turns per bus",
        f"  {'what':34} {'median':>9}  {'p95':>9}  {'vs bare':>7}",
        f"  {'bare activity round trip':34} {_ms(bare):>9}  "
        f"{_ms(_percentile(report.bare, 95)):>9}  {'1.00x':>7}",
    ]
    for name, values in (("turn, in-memory bus", report.memory), ("turn, Redis bus", report.redis)):
        median = statistics.median(values)
        rows.append(f"  {name:34} {_ms(median):>9}  {_ms(_percentile(values, 95)):>9}  {median / bare:6.2f}x")
    return "\n".join(rows)


def _step_row(count: int, overheads: list[float], errors: int, seconds: float) -> str:
    if not overheads:
        return f"{count:>6}  {0:>7}  no turns measured ({errors} callers failed)"
    p95 = _percentile(overheads, 95)
    verdict = "ok" if p95 <= P95_LIMIT else "p95 over 100 ms"
    failed = f", {errors} callers failed" if errors else ""
    rate = len(overheads) / seconds
    return (
        f"{count:>6}  {rate:>7.1f}  {_ms(_percentile(overheads, 50)):>8}  "
        f"{_ms(p95):>8}  {_ms(_percentile(overheads, 99)):>8}  {verdict}{failed}"
    )


def _summary(report: Report) -> bool:
    held = [
        count
        for count, values, errors in report.steps
        if values and not errors and _percentile(values, 95) <= P95_LIMIT
    ]
    best = max(held, default=0)
    met = best >= TARGET_CALLS
    print()
    print(
        f"largest number of calls with p95 turn overhead under 100 ms: {best} "
        f"(target ≥ {TARGET_CALLS}: {'met' if met else 'MISSED'})"
    )
    return met


def _dev_server(transfer_rps: int | None) -> EmbeddedTemporal:
    """The embedded dev server; ``transfer_rps`` overrides how often it reads its transfer queue."""
    if transfer_rps is None:
        return EmbeddedTemporal()
    return EmbeddedTemporal(
        dynamic_config={**DEV_SERVER_DYNAMIC_CONFIG, "history.transferProcessorMaxPollRPS": transfer_rps}
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--turns", type=int, default=30, help="turns per one-call round")
    parser.add_argument("--rounds", type=int, default=3, help="one-call rounds per bus")
    parser.add_argument(
        "--calls",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[50, 100, 150, 200, 300],
        help="the steps of calls at once",
    )
    parser.add_argument(
        "--think",
        type=float,
        default=5.0,
        help="seconds from a question to the caller's answer (default 5: "
        "prompts take no time here, so this stands for hearing the prompt and "
        "answering it)",
    )
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds measured per step")
    parser.add_argument(
        "--starts-per-second", type=float, default=25.0, help="how fast the calls of a step start"
    )
    parser.add_argument(
        "--transfer-rps",
        type=int,
        default=None,
        metavar="N",
        help="start the embedded dev server with its history transfer queue "
        "polled up to N times a second (voxflow's default: 1000; the dev "
        "server's own, 20, adds up to 50 ms to every workflow step)",
    )
    parser.add_argument(
        "--heartbeat-throttle",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="the load worker's heartbeat throttle (voxflow worker's default: "
        "1; a waiting node reports to Temporal that often)",
    )
    parser.add_argument(
        "--no-sandbox", action="store_true", help="run the load worker's workflows without Temporal's sandbox"
    )
    parser.add_argument("--slots", type=int, default=1000, help="the load worker's max concurrent activities")
    args = parser.parse_args(argv)
    send_logs_to_file(default_log_file("bench"))
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "bench.yaml").write_text(FLOW, encoding="utf-8")
        graph = compile_paths([folder]).flows["bench-voice"]
    settings = temporal_settings_from_env()
    server_pid = None
    with contextlib.ExitStack() as stack:
        if settings.address is None:
            server = stack.enter_context(_dev_server(args.transfer_rps))
            settings = server.settings()
            server_pid = server.pid
        redis_url = redis_url_from_env()
        if redis_url is None:
            redis = stack.enter_context(EmbeddedRedis())
            redis_url = redis.url
        print(f"voxflow voice benchmark: Temporal at {settings.address}, Redis at {redis_url}", flush=True)
        report = asyncio.run(measure(settings, redis_url, args, graph, server_pid))
        return 0 if _summary(report) else 1


if __name__ == "__main__":
    sys.exit(main())
