"""A call's limits and timers: the walk raced against the hangup, max_call_duration
(with its warning), the engine's cap on total execution time, and stopping the walk."""

from __future__ import annotations

import asyncio

from temporalio import workflow

import engine.runtime.messages as m
from engine.runtime.call_base import CallBase, Ending, duration

TIME_UP = "We have reached the time limit for this call. Thank you for calling. Goodbye."


class CallLimits(CallBase):
    async def _supervise(self, walk: asyncio.Task[Ending]) -> Ending:
        """Wait for the walk to end, racing the caller's hangup and the call's timers."""
        while True:
            alarm, kind = self._next_alarm()
            try:
                if alarm is not None and alarm <= 0:
                    raise TimeoutError()
                await workflow.wait_condition(
                    lambda: walk.done() or self._hangup is not None,
                    timeout=alarm,
                    timeout_summary=kind,
                )
            except TimeoutError:
                if kind == "warning":
                    self._warn()
                    continue
                await self._stop(walk)
                return await self._time_up(kind or "")
            if walk.done():
                return walk.result()  # also re-raises continue-as-new
            at = self._current
            await self._stop(walk)
            reason = self._hangup or "the caller hung up"
            return Ending(m.USER_HANGUP, f"{reason} (at the node '{at}')")

    def _next_alarm(self) -> tuple[float | None, str | None]:
        if self._input.subflow:
            return None, None  # the parent call's timers govern
        elapsed = workflow.now().timestamp() - self._started_at
        alarms: list[tuple[float, str]] = []
        limit = self._call_limit()
        if limit is not None:
            before = self._options.warning_before
            if not self._warned and 0 < before < limit:
                alarms.append((limit - before - elapsed, "warning"))
            alarms.append((limit - elapsed, "max_call_duration"))
        if self._options.max_execution_time > 0:
            alarms.append((self._options.max_execution_time - elapsed, "execution_cap"))
        if not alarms:
            return None, None
        seconds, kind = min(alarms)
        return seconds, kind

    def _call_limit(self) -> float | None:
        if self._options.max_call_duration is not None:
            return float(self._options.max_call_duration)
        setting = self._graph.settings.get("max_call_duration")
        return float(setting) if setting is not None else None

    def _warn(self) -> None:
        self._warned = True
        left = duration(self._options.warning_before)
        # Recorded now; spoken through the voice bus once voice nodes run.
        self._event("time_warning", f"the call will reach its maximum duration in {left}", self._current)

    async def _time_up(self, kind: str) -> Ending:
        if kind == "max_call_duration":
            limit = self._call_limit() or 0.0
            reason = f"the call reached its maximum duration of {duration(limit)}"
        else:
            reason = (
                "the call ran past voxflow's cap on total execution time "
                f"({duration(self._options.max_execution_time)})"
            )
        self._event("timeout", reason, self._current)
        problem = await self._farewell(TIME_UP)
        if problem is not None:
            reason += f"; the farewell could not be said: {problem}"
        return Ending(m.TIMEOUT, reason)

    def _unless_stopping(self) -> None:
        """Raise CancelledError when the call is being stopped. Cancelling the walk while
        it awaits an activity only asks Temporal to cancel that activity: one that
        completes anyway returns its result, and the walk would go on as if no hangup
        had come. So the walk checks after each activity it awaits."""
        if self._stopping:
            raise asyncio.CancelledError()

    async def _stop(self, walk: asyncio.Task[Ending]) -> None:
        """Cancel the walk (and with it the running activity or subflow) and wait for it."""
        self._stopping = True
        if not walk.done():
            walk.cancel()
        try:
            await walk
        except (asyncio.CancelledError, Exception):
            pass  # the call's ending is decided by whoever stopped it
        self._stopping = False  # what runs next (a farewell) is not being cancelled
