"""What every part of a call's workflow shares: its state, its events, how it ends.

``CallFlowWorkflow`` (workflow.py) is put together from small parts, one job each:
walking the graph (call_walk.py), the call's limits and timers (call_limits.py),
failures and the apology (call_failures.py), call records (call_recording.py) and
signals (call_signals.py). Each is a mixin over :class:`CallBase`, which declares
the state they share; the state itself is set up in ``CallFlowWorkflow.__init__``.

These modules are imported through the sandbox's pass-through (as workflow.py
imports them), so they are loaded once per worker, not once per call.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from temporalio import workflow

import engine.runtime.messages as m
from engine.language.compile import FlowGraph, FlowNode

PATH_LIMIT = 1000  # node ids kept for the query and result (steps counts them all)
EVENT_LIMIT = 200


class NodeFailure(Exception):
    """A node failed for good (after its retries); the message is for the call record."""


@dataclass(frozen=True)
class Ending:
    status: str
    reason: str


class CallBase:
    """The state of one call's run, shared by the workflow's parts."""

    _input: m.CallInput
    _graph: FlowGraph
    _options: m.CallOptions
    _current: str
    _variables: dict[str, Any]
    _visits: dict[str, int]
    _path: deque[str]
    _steps: int
    _started_at: float
    _events: list[m.CallEvent]
    _pending: dict[str, list[Any]]
    _transcript: list[m.TranscriptEntry]
    _failure: str | None
    _warned: bool
    _runs: int
    _hangup: str | None
    _stopping: bool
    _waiting_for: str | None
    _child: workflow.ChildWorkflowHandle[Any, m.CallResult] | None
    _ending: Ending | None
    _services: Any
    # Nodes walked since the last activity, for the call record (CallOptions.record).
    _walked: deque[str]

    def _elapsed(self) -> float:
        return round(workflow.now().timestamp() - self._started_at, 3)

    def _event(self, kind: str, message: str, node: str | None = None) -> None:
        self._events.append(m.CallEvent(self._elapsed(), kind, message, node))
        del self._events[:-EVENT_LIMIT]
        if not workflow.unsafe.is_replaying():
            workflow.logger.info("%s: %s", kind, message)

    # What one part asks of another; the parts come before CallBase in the workflow's
    # method resolution order, so these are never the ones called.

    async def _run_activity(
        self,
        node_id: str,
        node_type: str,
        config: Mapping[str, Any],
        *,
        timeout: float | None = None,
        rendered: bool = False,
    ) -> m.NodeOutcome:
        raise NotImplementedError  # call_walk.CallWalk

    async def _after_failure(self, node: FlowNode, message: str) -> str | Ending:
        raise NotImplementedError  # call_failures.CallFailures

    async def _apologise_and_fail(self, reason: str) -> Ending:
        raise NotImplementedError  # call_failures.CallFailures

    async def _farewell(self, message: str) -> str | None:
        raise NotImplementedError  # call_failures.CallFailures

    async def _record(self, name: str, arg: Any, attempts: int, activity_id: str | None = None) -> None:
        raise NotImplementedError  # call_recording.CallRecording

    def _take_walked(self) -> list[str]:
        raise NotImplementedError  # call_recording.CallRecording

    def _unless_stopping(self) -> None:
        raise NotImplementedError  # call_limits.CallLimits


def initial_variables(call_input: m.CallInput) -> dict[str, Any]:
    """Flow defaults, then the automatic call variables, then the caller's overrides."""
    variables = dict(call_input.graph.variables)
    for key in m.AUTOMATIC_VARIABLES:
        if key in call_input.call:
            variables[key] = call_input.call[key]
    if variables.get("call_sid") is None:
        variables["call_sid"] = call_input.call_id
    variables.update(call_input.variables)
    variables["call_id"] = call_input.call_id
    variables["flow_id"] = call_input.graph.flow_id
    variables["flow_version"] = call_input.graph.version
    variables["call_duration"] = 0
    return variables


def duration(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"
