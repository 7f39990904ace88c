"""The baselines of bench_runtime: an empty workflow awaiting empty activities.

Its own tiny module because Temporal's sandbox re-imports a workflow's module
for every run; importing the benchmark's whole module there would cost the
baseline time that voxflow's workflow (whose engine imports are passed
through) does not pay.

:class:`BareWorkflow` is the baseline the target is measured against.
:class:`ShapedWorkflow` (``--breakdown``) schedules an activity that does
nothing the way CallFlowWorkflow schedules ``run_node`` (its timeouts,
retry policy, cancellation type, activity id, a task and an outcome of the
same size): what Temporal itself charges for such a step, without voxflow.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.common import RetryPolicy


@activity.defn(name="bench_empty")
async def empty_activity() -> None:
    return None


@activity.defn(name="bench_echo")
async def echo_activity(task: dict[str, Any]) -> Any:
    return task.get("outcome")


@workflow.defn(name="BenchBareWorkflow")
class BareWorkflow:
    """N empty activities in a row, nothing else."""

    @workflow.run
    async def run(self, count: int) -> int:
        for _ in range(count):
            await workflow.execute_activity(empty_activity, start_to_close_timeout=timedelta(seconds=30))
        return count


@workflow.defn(name="BenchShapedWorkflow")
class ShapedWorkflow:
    """N activities that do nothing, each scheduled like run_node (see workflow.py)."""

    @workflow.run
    async def run(self, count: int, task: dict[str, Any]) -> int:
        for step in range(count):
            await workflow.execute_activity(
                echo_activity,
                task,
                activity_id=f"{step}:query",
                start_to_close_timeout=timedelta(seconds=125),
                heartbeat_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_attempts=3
                ),
                cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            )
        return count
