"""A workflow that imports what redis's ConnectionPool.__del__ imports (test_sandbox_imports).

Kept apart from the test so that the sandbox, which imports a workflow's module
again for every run, has nothing else to load.
"""

from __future__ import annotations

from temporalio import workflow


@workflow.defn
class ImportsLikeAFinalizer:
    @workflow.run
    async def run(self) -> str:
        # What the garbage collector may run on a workflow's thread mid-activation:
        # redis.asyncio.connection.ConnectionPool.__del__ does this import lazily.
        import redis.observability.recorder

        return redis.observability.recorder.__name__
