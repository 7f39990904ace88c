"""Putting a server (and, for ``voxflow dev`` and tests, a worker) together and taking it apart.

:class:`ServerStack` owns what it started: the HTTP site, the hot reload
watcher, the Redis relay of live events, the records store, and optionally a
worker in the same process. ``async with ServerStack(...) as stack`` starts it
all and stops it all, in reverse order, however the block ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

from aiohttp import web
from temporalio.client import Client

from engine.runtime.config import RuntimeConfig
from engine.runtime.services import RuntimeServices
from engine.runtime.worker import WorkerOptions, create_worker, freeze_startup_objects
from engine.server import events as ev
from engine.server.app import create_app
from engine.server.context import ServerContext
from engine.server.flow_library import FlowLibrary
from engine.server.metrics import Metrics
from engine.server.reconciler import Reconciler
from engine.server.recorder import CallRecorder
from engine.server.records import RecordsStore, open_records
from engine.server.reload import report_reload, watch_flows
from engine.server.settings import ServerSettings


@dataclass
class StackOptions:
    host: str = "127.0.0.1"
    port: int = 8080  # 0: a free port
    watch: bool = True
    run_worker: bool = False  # a worker in this process (voxflow dev, tests)
    worker_options: WorkerOptions | None = None
    runtime_config: RuntimeConfig | None = None
    voice_bus: Any = None
    voice_clock: Any = None
    out: TextIO | None = None
    extra_services: dict[str, Any] = field(default_factory=dict)


class ServerStack:
    def __init__(
        self,
        settings: ServerSettings,
        temporal: Client,
        options: StackOptions | None = None,
        records: RecordsStore | None = None,
    ) -> None:
        self.settings = settings
        self.temporal = temporal
        self.options = options or StackOptions()
        self._records = records
        self._exit = contextlib.AsyncExitStack()
        self.ctx: ServerContext | None = None
        self.url = ""
        self.worker_services: RuntimeServices | None = None
        self.reconciler: Reconciler | None = None

    async def __aenter__(self) -> ServerStack:
        try:
            await self._start()
        except BaseException:
            await self._exit.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._exit.aclose()

    async def _start(self) -> None:
        options, settings = self.options, self.settings
        out = options.out or sys.stdout
        records = self._records
        if records is None:
            records = await open_records(settings.records_url).open()
            self._exit.push_async_callback(records.close)
        hub = ev.EventHub()
        hub.bind()
        publisher: ev.EventPublisher
        if settings.redis_url:
            # Through Redis even in one process: the same path several replicas take.
            relay = ev.RedisRelay(settings.redis_url, hub)
            await relay.start()
            self._exit.push_async_callback(relay.close)
            publisher = ev.RedisPublisher(settings.redis_url)
            self._exit.push_async_callback(publisher.close)
        else:
            publisher = ev.LocalPublisher(hub)
        library = FlowLibrary(settings.flows_dir)
        ctx = ServerContext(
            settings,
            library,
            records,
            hub,
            publisher,
            self.temporal,
            voice_bus=options.voice_bus,
            metrics=Metrics(),
        )
        self.ctx = ctx
        self._exit.push_async_callback(ctx.close)
        if ctx.desk.telnyx is not None:
            await ctx.desk.telnyx.client()  # the SDK loads in seconds: not on a caller's time
        report_reload(ctx, library.reload(), out)
        if options.run_worker:
            await self._start_worker(records, publisher)
        app = create_app(ctx)
        runner = web.AppRunner(app, shutdown_timeout=2.0, handle_signals=False)
        await runner.setup()
        self._exit.push_async_callback(runner.cleanup)
        port = options.port or free_port(options.host)
        site = web.TCPSite(runner, options.host, port, reuse_address=True)
        try:
            await site.start()
        except OSError as error:
            from engine.core.errors import VoxflowError

            raise VoxflowError(
                f"cannot listen on {options.host}:{port} ({error.strerror or error}); is another "
                "server running there? Choose another port with --port."
            ) from None
        self.url = f"http://{options.host}:{port}"
        self.reconciler = Reconciler(records, ctx.temporal_client, publisher)
        if settings.reconcile_seconds > 0 and self.temporal is not None:
            halt = asyncio.Event()
            reconciling = asyncio.create_task(self.reconciler.run(settings.reconcile_seconds, halt))

            async def stop_reconciling() -> None:
                halt.set()
                with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError, Exception):
                    await asyncio.wait_for(reconciling, 5)

            self._exit.push_async_callback(stop_reconciling)
        if options.watch:
            stop = asyncio.Event()
            task = asyncio.create_task(watch_flows(ctx, stop, out))

            async def stop_watching() -> None:
                stop.set()
                with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError, Exception):
                    await asyncio.wait_for(task, 2)

            self._exit.push_async_callback(stop_watching)

    async def _start_worker(self, records: RecordsStore, publisher: ev.EventPublisher) -> None:
        options = self.options
        services = RuntimeServices(
            options.runtime_config,
            voice_bus=options.voice_bus,
            voice_clock=options.voice_clock,
            recorder=CallRecorder(records, publisher),
        )
        for name, value in options.extra_services.items():
            setattr(services, name, value)
        self.worker_services = services
        worker_options = options.worker_options or WorkerOptions(
            task_queue=self.settings.task_queue, graceful_shutdown=2.0
        )
        worker = create_worker(self.temporal, services, worker_options)
        task = asyncio.create_task(worker.run())
        freeze_startup_objects()

        async def stop_worker() -> None:
            with contextlib.suppress(Exception):
                await worker.shutdown()
            with contextlib.suppress(BaseException):
                await task
            await services.close()

        self._exit.push_async_callback(stop_worker)

    @property
    def context(self) -> ServerContext:
        assert self.ctx is not None, "the stack is not started"
        return self.ctx


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
