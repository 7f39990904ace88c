"""Building and running the Temporal worker: CallFlowWorkflow plus the ``run_node`` activity.

The workflow runs in Temporal's default sandbox, so a non-deterministic call
(``datetime.now()``, file access, ...) in workflow code fails loudly instead of
breaking replay. The engine modules it needs are passed through with
``workflow.unsafe.imports_passed_through()`` in workflow.py itself.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from engine.language.registry import PluginRegistry
from engine.runtime.activities import NodeActivities
from engine.runtime.messages import TASK_QUEUE
from engine.runtime.services import RuntimeServices
from engine.runtime.workflow import CallFlowWorkflow

# Third-party modules the workflow's pass-through imports rely on; passing
# them through keeps the sandbox from re-importing them for every call. redis and
# opentelemetry are never workflow code, but the garbage collector may run a
# finalizer on a workflow's thread mid-activation, and redis's ConnectionPool.__del__
# imports redis.observability (and opentelemetry) lazily: passed through, that is
# the real module, not a fresh copy inside one call's sandbox with a warning.
PASSTHROUGH_MODULES = ("jinja2", "markupsafe", "yaml", "jsonschema", "aiohttp", "redis", "opentelemetry")


@dataclass(frozen=True)
class WorkerOptions:
    """How a worker polls. Lengths of time are in seconds.

    ``heartbeat_throttle`` bounds how long a hangup takes to reach a running
    activity (cancellation travels on heartbeat replies). ``sticky_timeout``
    is how long Temporal waits for this worker to take a call's next step
    before handing it to another worker (after a crash, say).
    """

    task_queue: str = TASK_QUEUE
    max_concurrent_activities: int = 200
    max_concurrent_workflow_tasks: int = 100
    heartbeat_throttle: float = 1.0
    sticky_timeout: float = 10.0
    graceful_shutdown: float = 10.0
    # False runs workflows without Temporal's sandbox: about 40% less worker CPU per
    # voice turn (bench/bench_voice.py --no-sandbox), without its guard against
    # non-deterministic code. The replay tests use the sandboxed runner either way.
    sandboxed: bool = True


def sandboxed_runner() -> SandboxedWorkflowRunner:
    """The workflow runner used in production and by the replay test."""
    restrictions = SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    return SandboxedWorkflowRunner(restrictions=restrictions)


def create_worker(
    client: Client,
    services: RuntimeServices,
    options: WorkerOptions | None = None,
    registry: PluginRegistry | None = None,
    extra_workflows: Sequence[type] = (),
    extra_activities: Sequence[Any] = (),
) -> Worker:
    """A worker for calls (``extra_*`` lets the benchmark add its bare baseline)."""
    options = options or WorkerOptions()
    activities = NodeActivities(services, registry)
    return Worker(
        client,
        task_queue=options.task_queue,
        workflows=[CallFlowWorkflow, *extra_workflows],
        activities=[activities.run_node, *activities.record_activities(), *extra_activities],
        workflow_runner=sandboxed_runner() if options.sandboxed else UnsandboxedWorkflowRunner(),
        max_concurrent_activities=options.max_concurrent_activities,
        max_concurrent_workflow_tasks=options.max_concurrent_workflow_tasks,
        max_heartbeat_throttle_interval=timedelta(seconds=options.heartbeat_throttle),
        default_heartbeat_throttle_interval=timedelta(seconds=options.heartbeat_throttle),
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=options.sticky_timeout),
        graceful_shutdown_timeout=timedelta(seconds=options.graceful_shutdown),
    )


def freeze_startup_objects() -> None:
    """Leave the objects of start-up (modules, plugins, the SDK) out of garbage collection.

    Python's oldest-generation collection looks at every object the process holds
    and stops the event loop meanwhile. A worker holding 200 calls paused for up to
    240 ms at a time, delaying every call's next turn; with what start-up loaded
    frozen (it lives as long as the process anyway), the pauses were about half as
    long (bench/bench_voice.py). Call it once the worker has started.
    """
    gc.collect()
    gc.freeze()


async def run_worker(
    client: Client,
    services: RuntimeServices,
    options: WorkerOptions | None = None,
    stop: asyncio.Event | None = None,
    ready: asyncio.Event | None = None,
) -> None:
    """Run a worker until ``stop`` is set (or forever); close the services after."""
    worker = create_worker(client, services, options)
    try:
        async with worker:
            freeze_startup_objects()
            if ready is not None:
                ready.set()
            await (stop.wait() if stop is not None else asyncio.Future())
    finally:
        await services.close()
