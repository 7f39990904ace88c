"""An event loop on a thread, for session fixtures that keep a worker running across tests.

Tests are plain functions that call ``asyncio.run``; a worker that serves a
whole session cannot live on any one test's loop, so it runs here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

from engine.runtime.services import RuntimeServices
from engine.runtime.temporal_server import TemporalSettings, connect_client
from engine.runtime.worker import WorkerOptions, create_worker

_T = TypeVar("_T")


class BackgroundLoop:
    """An event loop on a daemon thread; run coroutines on it from sync code."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, _T], timeout: float = 60) -> _T:
        future: concurrent.futures.Future[_T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    @contextlib.contextmanager
    def running_worker(
        self, settings: TemporalSettings, services: RuntimeServices, options: WorkerOptions
    ) -> Iterator[None]:
        """A voxflow worker on this loop for the block; then shut down and its services closed."""

        async def start() -> tuple[Any, asyncio.Task[None]]:
            worker = create_worker(await connect_client(settings), services, options)
            # Kept: the loop holds only a weak reference to a task.
            return worker, asyncio.ensure_future(worker.run())

        worker, running = self.run(start())
        try:
            yield
        finally:

            async def stop() -> None:
                await worker.shutdown()
                await asyncio.gather(running, return_exceptions=True)
                await services.close()

            self.run(stop())
