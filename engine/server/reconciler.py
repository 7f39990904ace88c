"""Closing the records of calls whose workflow ended without saying so.

A call's workflow writes its record's end itself. It cannot when it is
terminated from Temporal (``temporal workflow terminate``), times out (a
Temporal-side execution timeout), is cancelled, or fails in Temporal's sense;
nor when its last record write kept failing. Then the record would stay
``active`` for ever. Every ``VOXFLOW_RECONCILE_SECONDS`` the server looks at the
records still ringing or active that have not changed for a while, asks
Temporal about each one's workflow, and closes those whose workflow is closed,
with the reason Temporal gives. Every replica may do this: a record is closed
only while it is still live, so two replicas close it once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHistoryEventFilterType
from temporalio.service import RPCError, RPCStatusCode

from engine.runtime.messages import CallResult, workflow_id
from engine.server import events as ev
from engine.server.records import RecordsStore

log = logging.getLogger(__name__)

QUIET_SECONDS = 30.0  # a record untouched this long is worth asking about
RINGING_GRACE = 120.0  # a ringing call with no workflow at all, after this long, never ran


class Reconciler:
    def __init__(
        self,
        records: RecordsStore,
        temporal: Callable[[], Client],
        publisher: ev.EventPublisher,
        *,
        quiet_for: float = QUIET_SECONDS,
        rpc_timeout: float = 5.0,
    ) -> None:
        self.records = records
        self._temporal = temporal
        self.publisher = publisher
        self.quiet_for = quiet_for
        self.rpc_timeout = rpc_timeout

    async def run(self, every: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
            if stop.is_set():
                return
            try:
                await self.once()
            except Exception as error:  # the database or Temporal is away: next round
                log.warning("calls not reconciled with Temporal this time: %s", error)

    async def once(self) -> list[str]:
        """One pass; returns the ids of the calls it closed."""
        closed = []
        for record in await self.records.live_calls(quiet_for=self.quiet_for):
            ending = await self._ending(record)
            if ending is None:
                continue
            status, reason, ended_at = ending
            duration = await self.records.close_if_live(
                record["call_id"], status=status, reason=reason, ended_at=ended_at
            )
            if duration is None:
                continue
            closed.append(record["call_id"])
            log.warning("call %s closed: %s", record["call_id"], reason)
            await self.publisher.publish(
                ev.LiveEvent(
                    ev.CALL_ENDED,
                    record["call_id"],
                    record.get("flow_id"),
                    {"status": status, "reason": reason, "duration": duration},
                )
            )
        return closed

    async def _ending(self, record: dict[str, Any]) -> tuple[str, str, float] | None:
        handle = self._temporal().get_workflow_handle(workflow_id(record["call_id"]), result_type=CallResult)
        from datetime import timedelta

        timeout = timedelta(seconds=self.rpc_timeout)
        try:
            description = await handle.describe(rpc_timeout=timeout)
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
            started = record.get("started_at") or 0.0
            if record["status"] == "ringing" and time.time() - started > RINGING_GRACE:
                return (
                    "failed",
                    "no workflow ever ran this call (it was never started, or Temporal lost it)",
                    time.time(),
                )
            return None
        status = description.status
        if status in (None, WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.CONTINUED_AS_NEW):
            return None
        ended_at = description.close_time.timestamp() if description.close_time else time.time()
        if status == WorkflowExecutionStatus.COMPLETED:
            # It ended properly but its record's last write was lost: its result says how.
            try:
                result = await handle.result(rpc_timeout=timeout)
                return result.status, result.reason, ended_at
            except Exception as error:  # noqa: BLE001 - still closed; say what we know
                return "completed", f"the call's workflow completed ({error})", ended_at
        detail = await self._close_detail(handle, timeout)
        if status == WorkflowExecutionStatus.TERMINATED:
            return (
                "failed",
                "the call's workflow was terminated in Temporal" + (f": {detail}" if detail else ""),
                ended_at,
            )
        if status == WorkflowExecutionStatus.TIMED_OUT:
            return (
                "timeout",
                "the call's workflow ran out of time in Temporal (its execution or run timeout)",
                ended_at,
            )
        if status == WorkflowExecutionStatus.CANCELED:
            return "failed", "the call's workflow was cancelled in Temporal", ended_at
        return (
            "failed",
            "the call's workflow failed in Temporal" + (f": {detail}" if detail else ""),
            ended_at,
        )

    @staticmethod
    async def _close_detail(handle: Any, timeout: Any) -> str:
        """The reason on the workflow's close event (a termination's, a failure's)."""
        try:
            async for event in handle.fetch_history_events(
                event_filter_type=WorkflowHistoryEventFilterType.CLOSE_EVENT, rpc_timeout=timeout
            ):
                terminated = event.workflow_execution_terminated_event_attributes
                if terminated.reason:
                    return str(terminated.reason)
                failed = event.workflow_execution_failed_event_attributes
                if failed.failure.message:
                    return str(failed.failure.message)
        except RPCError:
            pass
        return ""
