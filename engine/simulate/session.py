"""The call simulator: the whole engine in one process, and calls with a simulated caller.

:class:`SimulatorEngine` starts what a call needs: a Temporal server (the
embedded dev server, unless ``TEMPORAL_ADDRESS`` names one), a voice bus
(in memory, or Redis: ``REDIS_URL`` / ``VOXFLOW_REDIS_URL`` or the embedded
``redis-server``) and a worker on a task queue of its own, whose services
carry the bus, the clock and a table of fixed answers.

:class:`SimulatedCall` is one call on it: the workflow started through
engine.runtime.calls, and a :class:`~engine.simulate.caller.ScriptedCaller`
serving the call's agent side of the bus. When the caller hangs up, the
call's workflow gets the ``hangup`` signal, as the telephony side sends it
in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from engine.core.errors import VoxflowError
from engine.language.compile import FlowGraph
from engine.runtime import messages as m
from engine.runtime.calls import call_state, hang_up, start_call
from engine.runtime.config import RuntimeConfig
from engine.runtime.services import RuntimeServices
from engine.runtime.temporal_server import (
    EmbeddedTemporal,
    TemporalSettings,
    connect_client,
    temporal_settings_from_env,
)
from engine.runtime.worker import WorkerOptions, create_worker
from engine.simulate.caller import ScriptAction, ScriptedCaller
from engine.simulate.fixtures import CallAnswers, FixedAnswerTable
from engine.voice.bus import VoiceBus
from engine.voice.clock import REAL_CLOCK, Clock
from engine.voice.memory_bus import MemoryVoiceBus
from engine.voice.redis_bus import RedisVoiceBus
from engine.voice.redis_server import EmbeddedRedis
from engine.voice.simulated_agent import Line

REDIS_URL_VARIABLES = ("VOXFLOW_REDIS_URL", "REDIS_URL")
BUS_KINDS = ("memory", "redis")
DEFAULT_CALLER = "+15551234567"
SHUTDOWN_SECONDS = 5.0
SETTLE_SECONDS = 0.3
INTERRUPTED = 130  # the exit code after Ctrl-C, as for every voxflow command


def redis_url_from_env(environ: Mapping[str, str] = os.environ) -> str | None:
    for name in REDIS_URL_VARIABLES:
        value = environ.get(name, "").strip()
        if value:
            return value
    return None


@dataclass
class EngineOptions:
    """How a simulator engine is set up."""

    bus: str = "memory"
    clock: Clock = REAL_CLOCK
    config: RuntimeConfig = field(default_factory=RuntimeConfig)
    temporal: TemporalSettings | None = None  # None: TEMPORAL_ADDRESS, else embedded
    redis_url: str | None = None  # None: REDIS_URL, else embedded (bus "redis" only)
    max_concurrent_activities: int = 400
    # Seconds; a hangup reaches a running node within this (the default is 1 s).
    heartbeat_throttle: float = 0.3


class SimulatorEngine:
    """Temporal, a voice bus and a worker for simulated calls (use with ``async with``)."""

    def __init__(
        self, options: EngineOptions | None = None, on_progress: Callable[[str], None] | None = None
    ) -> None:
        self.options = options or EngineOptions()
        if self.options.bus not in BUS_KINDS:
            raise VoxflowError(f"unknown voice bus '{self.options.bus}'; use memory or redis.")
        self.answers = FixedAnswerTable()
        self.task_queue = f"voxflow-sim-{uuid.uuid4().hex[:8]}"
        self._progress = on_progress or (lambda _text: None)
        self._temporal: EmbeddedTemporal | None = None
        self._redis: EmbeddedRedis | None = None
        self._client: Client | None = None
        self._worker: Worker | None = None
        self._worker_task: asyncio.Task[None] | None = None
        self._services: RuntimeServices | None = None
        self._buses: list[VoiceBus] = []
        self.where = ""  # a few words on where Temporal and the bus are, for people
        self.redis_url: str | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            raise RuntimeError("the simulator engine is not started")
        return self._client

    async def __aenter__(self) -> SimulatorEngine:
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        settings = self.options.temporal or temporal_settings_from_env()
        if settings.address is None:
            self._progress("starting a Temporal dev server on this machine")
            self._temporal = EmbeddedTemporal()
            await self._temporal.start_async()
            settings = self._temporal.settings()
            temporal_where = "an embedded Temporal dev server"
        else:
            temporal_where = f"Temporal at {settings.address}"
        self._client = await connect_client(settings)
        worker_bus = await self._new_bus()
        self._services = RuntimeServices(
            self.options.config,
            worker_bus,
            voice_clock=self.options.clock,
            fixed_answers=self.answers,
        )
        worker_options = WorkerOptions(
            task_queue=self.task_queue,
            max_concurrent_activities=self.options.max_concurrent_activities,
            heartbeat_throttle=self.options.heartbeat_throttle,
            graceful_shutdown=1.0,
        )
        self._worker = create_worker(self._client, self._services, worker_options)
        self._worker_task = asyncio.ensure_future(self._worker.run())
        bus_where = (
            "an in-memory voice bus"
            if self.options.bus == "memory"
            else (f"the Redis voice bus at {self.redis_url}")
        )
        self.where = f"{temporal_where}, {bus_where}"

    async def _new_bus(self) -> VoiceBus:
        bus: VoiceBus
        if self.options.bus == "memory":
            bus = self._buses[0] if self._buses else MemoryVoiceBus()
            if not self._buses:
                self._buses.append(bus)
            return bus
        if self.redis_url is None:
            url = self.options.redis_url or redis_url_from_env()
            if url is None:
                self._progress("starting a Redis server on this machine")
                self._redis = EmbeddedRedis()
                await asyncio.to_thread(self._redis.start)
                url = self._redis.url
            self.redis_url = url
        redis_bus = RedisVoiceBus.from_url(self.redis_url)
        await redis_bus.check()
        self._buses.append(redis_bus)
        return redis_bus

    async def caller_bus(self) -> VoiceBus:
        """The bus the caller side uses: the same object in memory, its own client on Redis
        (as the agent, another process, would have)."""
        if self.options.bus == "memory":
            return self._buses[0]
        if len(self._buses) < 2:
            await self._new_bus()
        return self._buses[1]

    def abandon(self) -> None:
        """Stop the embedded servers now, leaving the worker as it is (Ctrl-C: see exit_on_interrupt).

        Ctrl-C in a terminal reaches the embedded servers too (they share our
        process group), and a worker whose server is gone waits for it forever
        to report on running nodes; so an interrupted process exits instead of
        shutting the worker down.
        """
        if self._redis is not None:
            self._redis.stop()
        if self._temporal is not None:
            self._temporal.stop()

    async def close(self) -> None:
        if self._worker is not None and self._worker_task is not None:
            # Bounded: after Ctrl-C the embedded server may already be gone.
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self._worker.shutdown(), SHUTDOWN_SECONDS)
            if not self._worker_task.done():
                self._worker_task.cancel()
            with contextlib.suppress(BaseException):
                await self._worker_task
        if self._services is not None:
            await self._services.close()
        for bus in self._buses:
            with contextlib.suppress(Exception):
                await bus.close()
        self._buses.clear()
        self._worker = self._worker_task = self._services = None
        self._client = None
        # As `voxflow worker` does (engine.cli.worker): let the SDK's native threads
        # finish their last callbacks while the loop runs, or one may abort the
        # process at interpreter exit (temporalio/sdk-python#300).
        gc.collect()
        await asyncio.sleep(SETTLE_SECONDS)
        if self._redis is not None:
            await asyncio.to_thread(self._redis.stop)
            self._redis = None
        if self._temporal is not None:
            await self._temporal.stop_async()
            self._temporal = None


@dataclass
class CallSetup:
    """Who calls whom, the flow's variables, and fixed answers."""

    caller_number: str = DEFAULT_CALLER
    called_number: str = ""
    variables: dict[str, Any] = field(default_factory=dict)
    answers: CallAnswers = field(default_factory=CallAnswers)
    failing_transfers: tuple[str, ...] = ()
    options: m.CallOptions = field(default_factory=m.CallOptions)


class SimulatedCall:
    """One call of a flow with a scripted caller (use with ``async with``, then await :meth:`result`)."""

    def __init__(
        self,
        engine: SimulatorEngine,
        graph: FlowGraph,
        setup: CallSetup | None = None,
        actions: tuple[ScriptAction, ...] = (),
        *,
        on_line: Callable[[Line], None] | None = None,
        on_idle: Callable[[bool], None] | None = None,
        call_id: str | None = None,
    ) -> None:
        self.engine = engine
        self.graph = graph
        self.setup = setup or CallSetup()
        self.call_id = call_id or f"sim-{uuid.uuid4().hex[:12]}"
        self._on_line = on_line
        self._actions = actions
        self._on_idle = on_idle
        self.caller: ScriptedCaller | None = None
        self.handle: WorkflowHandle[Any, m.CallResult] | None = None
        self._caller_task: asyncio.Task[None] | None = None
        self._hangup_sent: asyncio.Task[None] | None = None

    async def start(self) -> None:
        bus = await self.engine.caller_bus()
        self.caller = ScriptedCaller(
            bus,
            self.call_id,
            self._actions,
            clock=self.engine.options.clock,
            failing_transfers=self.setup.failing_transfers,
            on_line=self._line,
            on_idle=self._on_idle,
        )
        self.engine.answers.register(self.call_id, self.setup.answers)
        self._caller_task = self.caller.start()
        call = {
            "call_sid": self.call_id,
            "caller_number": self.setup.caller_number,
            "called_number": self.setup.called_number,
        }
        self.handle = await start_call(
            self.engine.client,
            self.graph,
            self.call_id,
            call=call,
            variables=self.setup.variables,
            options=self.setup.options,
            task_queue=self.engine.task_queue,
        )

    def add(self, *actions: ScriptAction) -> None:
        assert self.caller is not None
        self.caller.add(*actions)

    async def result(self) -> m.CallResult:
        assert self.handle is not None
        result: m.CallResult = await self.handle.result()
        return result

    async def state(self) -> m.CallSnapshot:
        return await call_state(self.engine.client, self.call_id)

    async def hang_up(self, reason: str = "the caller hung up") -> None:
        """The caller hangs up now, whatever the flow is doing."""
        await hang_up(self.engine.client, self.call_id, reason)

    async def finish(self) -> None:
        """Stop serving the call's agent side and forget its fixed answers."""
        if self.caller is not None:
            await self.caller.stop(announce=False)
        if self._hangup_sent is not None:
            with contextlib.suppress(Exception):
                await self._hangup_sent
        self.engine.answers.forget(self.call_id)
        bus = await self.engine.caller_bus()
        with contextlib.suppress(Exception):
            await bus.end_call(self.call_id)

    async def __aenter__(self) -> SimulatedCall:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.finish()

    def _line(self, line: Line) -> None:
        if line.speaker == "caller" and line.text == "[hangs up]" and self._hangup_sent is None:
            # The phone network tells the engine, as the telephony server does in production.
            self._hangup_sent = asyncio.ensure_future(self.hang_up())
        if self._on_line is not None:
            self._on_line(line)


def exit_on_interrupt(engine: SimulatorEngine, before_exit: Callable[[], None]) -> None:
    """On Ctrl-C (SIGINT): hang up nothing, wait for nothing: stop the servers and exit with 130.

    Call from the running event loop. ``before_exit`` restores the terminal and
    says goodbye.
    """
    loop = asyncio.get_running_loop()

    def interrupted() -> None:
        with contextlib.suppress(Exception):
            before_exit()
        with contextlib.suppress(Exception):
            engine.abandon()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(INTERRUPTED)

    with contextlib.suppress(NotImplementedError, RuntimeError):  # not on the main thread
        loop.add_signal_handler(signal.SIGINT, interrupted)
