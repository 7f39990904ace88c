"""Call records and live events, as the runtime sees them: written from activities.

A call's record (who called, which flow and version, status, node path,
transcript, final variables) is written by the worker, through activities,
so that whatever the workflow has done is on the record even if the server
or a worker dies: an activity that did not finish is retried by Temporal.

- ``record_call_started`` runs once when a call's workflow begins: the record
  becomes ``active`` with the flow version the call is pinned to.
- ``run_node`` (engine.runtime.activities) notes each node the call enters,
  the logic nodes walked since the previous activity, the variables as they
  are then, and the transcript turns that cross the voice bus while it runs.
- ``record_node_reached`` notes a node that waits inside the workflow
  (for a signal, for a called flow): no activity would report it otherwise,
  and a call may sit there for hours;
- ``record_call_ended`` runs once when the call ends, with the status, the
  reason, the whole path and the final variables.

All of it is switched on per call by ``CallOptions.record`` (the server sets it;
tests and benchmarks that start calls directly leave it off), so calls
recorded before this existed replay unchanged, and a worker without a records
store still runs recorded calls: its :class:`CallRecorder` is simply absent
and the activities do nothing.

This module is imported inside the workflow sandbox (through workflow.py):
plain dataclasses and a Protocol only, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from engine.runtime.messages import CallEvent

RECORD_CALL_STARTED = "record_call_started"
RECORD_CALL_ENDED = "record_call_ended"
RECORD_NODE_REACHED = "record_node_reached"


@dataclass
class CallOpened:
    """``record_call_started``'s input: what the call is, when its workflow began."""

    call_id: str
    flow_id: str
    flow_version: str
    call: dict[str, Any] = field(default_factory=dict)
    started_at: float = 0.0  # workflow time, epoch seconds


@dataclass
class CallClosed:
    """``record_call_ended``'s input: how the call ended."""

    call_id: str
    flow_id: str
    flow_version: str
    status: str
    reason: str
    variables: dict[str, Any] = field(default_factory=dict)
    path: list[str] = field(default_factory=list)
    events: list[CallEvent] = field(default_factory=list)
    started_at: float = 0.0
    ended_at: float = 0.0


@dataclass
class NodeReached:
    """``record_node_reached``'s input (a workflow-side node that waits)."""

    call_id: str
    root_flow_id: str
    flow_id: str
    node_id: str
    node_type: str
    walked: list[str] = field(default_factory=list)
    variables: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NodeEntered:
    """What ``run_node`` reports before running a node of a recorded call."""

    call_id: str
    root_flow_id: str  # the flow the call started on (subflow nodes report their own below)
    flow_id: str
    node_id: str
    node_type: str
    walked: tuple[str, ...]  # nodes walked since the previous report, this one last
    variables: Mapping[str, Any]
    run_key: str = ""  # this run of the node: "<workflow id>/<activity id>" (call analytics)


class CallRecorder(Protocol):
    """Where a worker writes call records and publishes live events (engine.server.recorder)."""

    async def call_started(self, opened: CallOpened) -> None: ...

    async def node_entered(self, entered: NodeEntered) -> None: ...

    async def node_finished(
        self,
        entered: NodeEntered,
        seconds: float,
        problem: str | None,
        answers: Mapping[str, Any] | None = None,
        result: Mapping[str, Any] | None = None,
    ) -> None:
        """``answers``: how the node's questions went (asked, no_input, no_match, heard,
        confidence_sum), when it asked the caller anything; ``result``: what a node that
        calls an outside service got (``exit`` and ``outputs``, or ``error``), so the call
        can be replayed as a conversation test."""
        ...

    async def call_ended(self, closed: CallClosed) -> None: ...

    async def variables_missing(
        self, call_id: str, root_flow_id: str, flow_id: str, node_id: str, names: list[str], message: str
    ) -> None:
        """A node's template read variables the call did not have (a warning for the author)."""
        ...

    def watch_voice_bus(self, bus: Any, call_id: str, flow_id: str) -> Any:
        """The voice bus as a node of this call should use it, with the transcript noted."""
        ...
