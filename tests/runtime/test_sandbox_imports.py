"""Libraries only activities use are passed through the workflow sandbox.

The garbage collector runs finalizers on whichever thread it happens to run on,
a workflow's included, and redis's ConnectionPool.__del__ imports
redis.observability.recorder (and with it opentelemetry) lazily. Inside a
workflow activation, a module that is not passed through is imported afresh
into that call's sandbox, with the warning "was imported after initial workflow
load" (seen in CI from tests/server/test_livekit_webhook.py).
"""

from __future__ import annotations

import asyncio
import uuid
import warnings

from engine.runtime.services import RuntimeServices
from engine.runtime.temporal_server import TemporalSettings, connect_client
from engine.runtime.worker import WorkerOptions, create_worker
from tests.runtime.finalizer_workflow import ImportsLikeAFinalizer


def test_a_finalizer_importing_redis_mid_activation_gets_the_real_module_without_a_warning(
    temporal_settings: TemporalSettings,
) -> None:
    async def scenario() -> str:
        client = await connect_client(temporal_settings)
        queue = f"sandbox-imports-{uuid.uuid4().hex[:8]}"
        worker = create_worker(
            client,
            RuntimeServices(),
            WorkerOptions(task_queue=queue, graceful_shutdown=1),
            extra_workflows=[ImportsLikeAFinalizer],
        )
        async with worker:
            # A failing import fails the workflow task, which Temporal retries forever.
            result: str = await asyncio.wait_for(
                client.execute_workflow(
                    ImportsLikeAFinalizer.run, id=f"sandbox-imports-{uuid.uuid4()}", task_queue=queue
                ),
                20,
            )
            return result

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert asyncio.run(scenario()) == "redis.observability.recorder"
    dynamic = [str(w.message) for w in caught if "imported after initial workflow load" in str(w.message)]
    assert dynamic == []
