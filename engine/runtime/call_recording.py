"""Writing the call record (CallOptions.record) from the workflow, best effort.

The start is tried briefly, so a records store that is down delays the caller by
seconds at most; the end is tried for about ten minutes, since nothing waits for it.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from engine.runtime.call_base import CallBase

RECORD_TIMEOUT = 10.0
RECORD_START_ATTEMPTS = 3
RECORD_END_ATTEMPTS = 25


class CallRecording(CallBase):
    def _records_call(self) -> bool:
        # A subflow's nodes are recorded (its activities carry the flag), but the
        # call's start and end belong to the workflow the call started.
        return self._options.record and not self._input.subflow

    async def _record(self, name: str, arg: Any, attempts: int, activity_id: str | None = None) -> None:
        """Write the call record; a records store that stays down is noted, never fatal."""
        try:
            await workflow.execute_activity(
                name,
                arg,
                activity_id=activity_id or name,
                start_to_close_timeout=timedelta(seconds=RECORD_TIMEOUT),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=0.5),
                    maximum_interval=timedelta(seconds=30),
                    maximum_attempts=attempts,
                ),
            )
        except ActivityError as error:
            if self._stopping:
                # Cancelled because the call is being stopped (a hangup): that must end the
                # walk here, not be taken for a failed write after which the node goes on
                # (a node waiting for a signal would then wait on, and the hangup be lost).
                raise asyncio.CancelledError() from None
            self._event(
                "record_failed",
                f"the call record could not be written: {error.cause or error}",
                self._current,
            )
        self._unless_stopping()

    def _take_walked(self) -> list[str]:
        walked = list(self._walked)
        self._walked.clear()
        return walked
