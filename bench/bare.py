"""The baseline of bench_runtime: an empty workflow awaiting empty activities.

Its own tiny module because Temporal's sandbox re-imports a workflow's module
for every run; importing the benchmark's whole module there would cost the
baseline time that voxflow's workflow (whose engine imports are passed
through) does not pay.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn(name="bench_empty")
async def empty_activity() -> None:
    return None


@workflow.defn(name="BenchBareWorkflow")
class BareWorkflow:
    """N empty activities in a row, nothing else."""

    @workflow.run
    async def run(self, count: int) -> int:
        for _ in range(count):
            await workflow.execute_activity(
                empty_activity, start_to_close_timeout=timedelta(seconds=30)
            )
        return count
