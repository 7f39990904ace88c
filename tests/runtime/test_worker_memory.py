"""A started worker leaves what start-up loaded out of garbage collection (shorter pauses)."""

from __future__ import annotations

import asyncio
import gc
import uuid

from engine.runtime.services import RuntimeServices
from engine.runtime.temporal_server import TemporalSettings, connect_client
from engine.runtime.worker import WorkerOptions, run_worker


def test_a_started_worker_freezes_the_objects_of_start_up(
    temporal_settings: TemporalSettings,
) -> None:
    async def scenario() -> int:
        client = await connect_client(temporal_settings)
        stop, ready = asyncio.Event(), asyncio.Event()
        options = WorkerOptions(task_queue=f"freeze-{uuid.uuid4().hex[:8]}", graceful_shutdown=1)
        running = asyncio.create_task(run_worker(client, RuntimeServices(), options, stop, ready))
        await asyncio.wait_for(ready.wait(), 30)
        frozen = gc.get_freeze_count()
        stop.set()
        await running
        return frozen

    gc.unfreeze()
    try:
        assert asyncio.run(scenario()) > 10_000  # modules, plugins, the SDK: many objects
    finally:
        gc.unfreeze()  # give the test process its usual collector back
