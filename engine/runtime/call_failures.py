"""When a node fails: its on_error, else the flow's error handler, else the apology
(said through the node with the ``farewell`` role); the call is then marked failed."""

from __future__ import annotations

from typing import Any

from temporalio.exceptions import ActivityError, ApplicationError, TimeoutType
from temporalio.exceptions import TimeoutError as TemporalTimeoutError

import engine.runtime.messages as m
from engine.language.compile import FlowNode
from engine.runtime.builtin_nodes import BUILTIN
from engine.runtime.call_base import CallBase, Ending, NodeFailure, duration

APOLOGY = "I'm having technical difficulties. Please call again later. Goodbye."
FAREWELL_NODE = "~farewell"  # not a valid node id, so it never clashes with one
FAREWELL_TIMEOUT = 30.0
TIMEOUT_GRACE = 5.0  # Temporal's start-to-close backstop beyond a node's own limit


class CallFailures(CallBase):
    async def _after_failure(self, node: FlowNode, message: str) -> str | Ending:
        """Where a failed node goes: on_error, else the error handler, else the apology."""
        self._event("node_failed", message, node.id)
        self._variables["last_error"] = {"node": node.id, "message": message}
        on_error = node.exit_target("on_error")
        if on_error is not None:
            return on_error
        if self._failure is not None:
            # A failure inside the error handler: do not go round it again.
            return Ending(m.FAILED, f"{self._failure}; then, in the error handler, {message}")
        self._failure = message
        handler = self._graph.error_handler
        if handler is not None and handler in self._graph.nodes:
            self._event("error_handler", f"going to the flow's error handler '{handler}'", node.id)
            return handler
        return await self._apologise_and_fail(message)

    async def _apologise_and_fail(self, reason: str) -> Ending:
        self._event("call_failed", reason, self._current)
        if self._input.subflow:
            return Ending(m.FAILED, reason)  # the calling flow decides what the caller hears
        problem = await self._farewell(APOLOGY)
        if problem is not None:
            reason += f"; the apology could not be said to the caller: {problem}"
        return Ending(m.FAILED, reason)

    async def _farewell(self, message: str) -> str | None:
        """Say goodbye and hang up through the farewell node; the problem, if any."""
        config = {"farewell_message": message, **self._voice_settings()}
        try:
            await self._run_activity(
                FAREWELL_NODE, BUILTIN.roles["farewell"], config, timeout=FAREWELL_TIMEOUT, rendered=True
            )
        except NodeFailure as failure:
            self._event("farewell_failed", str(failure), self._current)
            return str(failure)
        self._event("farewell", message, self._current)
        return None

    def _voice_settings(self) -> dict[str, Any]:
        return {k: v for k, v in self._graph.settings.items() if k in ("voice", "language")}


def activity_problem(
    node_id: str, node_type: str, error: ActivityError, limit: float, heartbeat: float
) -> str:
    label = f"the node '{node_id}' ({node_type})"
    cause = error.cause
    if isinstance(cause, ApplicationError):
        return cause.message
    if isinstance(cause, TemporalTimeoutError):
        if cause.type == TimeoutType.HEARTBEAT:
            return (
                f"{label} stopped answering: the worker running it went away or froze "
                f"(no sign of life for {duration(heartbeat)}), and retrying did not help."
            )
        return f"{label} took longer than {duration(limit + TIMEOUT_GRACE)}."
    return f"{label} failed: {cause or error}"
