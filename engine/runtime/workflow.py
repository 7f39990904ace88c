"""``CallFlowWorkflow``: one phone call, walking its compiled FlowGraph durably.

How a call runs:

- The input is the compiled graph itself (:class:`~engine.runtime.messages.CallInput`),
  so a call runs to its end on the flow version it started with, whatever
  happens to the file, and replay never reads files or the plugin registry.
- Logic nodes (voxflow's own ``RUNS_IN = "workflow"`` nodes) run right here, synchronously:
  they create no history events, so thousands of them cost microseconds.
  Waiting for a signal and calling another flow also run here because they
  need workflow APIs (a durable timer and signals; a child workflow).
- Every other node runs as the generic ``run_node`` activity (see
  activities.py) with the node's timeout, its ``retry`` as a Temporal retry
  policy, a heartbeat timeout, and cancellation on hangup.
- A failed node goes to its ``on_error``; without one, to the flow's
  ``error_handler``; without one, the default handler apologises ("I'm having
  technical difficulties") through the node with the ``farewell`` role (ENGINE_ROLE). Either way
  the call is marked ``failed``, with the reason.
- Timers: ``max_call_duration`` (a warning event before it, a farewell, status
  ``timeout``), the engine's cap on total execution time, and per-node visit
  bounds (``max_visits``).
- When the history grows past ``options.history_event_limit`` (or Temporal
  suggests it), the call continues as new between two nodes, carrying its
  state (:class:`~engine.runtime.messages.CallState`).

The class is put together from parts with one job each (see call_base.py):
call_walk.py walks the graph, call_limits.py keeps the timers, call_failures.py
handles failures and the apology, call_recording.py writes call records and
call_signals.py keeps signals until a node takes them. What stays here is the
call's start and end, its messages, and what workflow-side nodes may use.

Messages: the ``hangup`` signal, the generic ``signal`` signal
(:class:`~engine.runtime.messages.CallSignal`) plus any other signal name
(dynamic handler: ``temporal workflow signal --name supervisor_approved``),
``voice_event`` for transcripts and DTMF, and the ``state`` query.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    # Not ``from engine.runtime import messages``: the sandbox re-imports this
    # module's parent package engine.runtime for every run, and a from-import of
    # a submodule of that fresh package bypasses the pass-through, so messages.py
    # was executed again (all its dataclasses rebuilt) at the start of every call.
    import engine.runtime.messages as m
    from engine.language.compile import FlowGraph
    from engine.runtime.builtin_nodes import BUILTIN
    from engine.runtime.call_base import (
        PATH_LIMIT,
        Ending,
        NodeFailure,
        initial_variables,
    )
    from engine.runtime.call_failures import APOLOGY, CallFailures
    from engine.runtime.call_limits import TIME_UP, CallLimits
    from engine.runtime.call_recording import (
        RECORD_END_ATTEMPTS,
        RECORD_START_ATTEMPTS,
        CallRecording,
    )
    from engine.runtime.call_signals import CallSignals
    from engine.runtime.call_walk import LOGIC_PAUSE, CallWalk
    from engine.runtime.recording import (
        RECORD_CALL_ENDED,
        RECORD_CALL_STARTED,
        CallClosed,
        CallOpened,
    )

# Named here for the tests and the benchmark that import them from the workflow module.
__all__ = ["APOLOGY", "LOGIC_PAUSE", "TIME_UP", "CallFlowWorkflow", "initial_variables"]

SAY_NODE = "~say"  # not a valid node id, so it never clashes with one


@workflow.defn(name=m.WORKFLOW_NAME)
class CallFlowWorkflow(CallWalk, CallLimits, CallFailures, CallRecording, CallSignals):
    @workflow.init
    def __init__(self, call_input: m.CallInput) -> None:
        # Set up in init (not run) so signals and queries that arrive with the
        # start already find the call's state.
        self._input = call_input
        self._graph: FlowGraph = call_input.graph
        self._options = call_input.options
        state = call_input.state or m.CallState(
            current=self._graph.start,
            variables=initial_variables(call_input),
            visits={},
            path=[],
            steps=0,
            started_at=workflow.now().timestamp(),
        )
        self._current: str = state.current
        self._variables: dict[str, Any] = state.variables
        self._visits: dict[str, int] = state.visits
        self._path: deque[str] = deque(state.path, maxlen=PATH_LIMIT)
        self._steps = state.steps
        self._started_at = state.started_at
        self._events: list[m.CallEvent] = state.events
        self._pending: dict[str, list[Any]] = state.pending_signals
        self._transcript: list[m.TranscriptEntry] = state.transcript
        self._failure: str | None = state.failure
        self._warned = state.warned
        self._runs = state.runs
        self._hangup: str | None = state.hangup
        self._stopping = False
        self._waiting_for: str | None = None
        self._child: workflow.ChildWorkflowHandle[Any, m.CallResult] | None = None
        self._ending: Ending | None = None
        self._services = _NodeServices(self)
        # Nodes walked since the last activity, for the call record (CallOptions.record).
        self._walked: deque[str] = deque(maxlen=PATH_LIMIT)

    # ---- the call -------------------------------------------------------

    @workflow.run
    async def run(self, call_input: m.CallInput) -> m.CallResult:
        if self._records_call() and call_input.state is None:
            await self._record(
                RECORD_CALL_STARTED,
                CallOpened(
                    call_id=call_input.call_id,
                    flow_id=self._graph.flow_id,
                    flow_version=self._graph.version,
                    call=dict(call_input.call),
                    started_at=self._started_at,
                ),
                RECORD_START_ATTEMPTS,
            )
        walk = asyncio.create_task(self._walk())
        try:
            ending = await self._supervise(walk)
        except asyncio.CancelledError:
            # Only a subflow is cancelled: its parent call hung up or timed out.
            await self._stop(walk)
            raise
        self._ending = ending
        self._event("call_ended", f"{ending.status}: {ending.reason}", self._current)
        if self._records_call():
            await self._record(
                RECORD_CALL_ENDED,
                CallClosed(
                    call_id=self._input.call_id,
                    flow_id=self._graph.flow_id,
                    flow_version=self._graph.version,
                    status=ending.status,
                    reason=ending.reason,
                    variables=self._variables,
                    path=list(self._path),
                    events=self._events,
                    started_at=self._started_at,
                    ended_at=workflow.now().timestamp(),
                ),
                RECORD_END_ATTEMPTS,
            )
        return m.CallResult(
            status=ending.status,
            reason=ending.reason,
            flow_id=self._graph.flow_id,
            flow_version=self._graph.version,
            variables=self._variables,
            path=list(self._path),
            last_node=self._current,
            steps=self._steps,
            runs=self._runs,
            events=self._events,
        )

    # ---- what workflow-side nodes may use (see _NodeServices) ------------

    async def _run_subflow(self, flow_id: str, inputs: Mapping[str, Any]) -> m.SubflowOutcome:
        graph = self._graph.subflows.get(flow_id)
        if graph is None:
            raise NodeFailure(
                f"the flow '{flow_id}' was not compiled into this call; validate the folder "
                "that holds both flows so the subflow is found."
            )
        child_input = m.CallInput(
            graph=graph,
            call_id=self._input.call_id,
            # The flow's settings ride along, so voice nodes see flow-wide rules
            # (low_confidence_threshold, rapid_interruptions, silence timers).
            call={**self._input.call, "settings": self._graph.settings},
            variables=dict(inputs),
            options=self._options,
            subflow=True,
        )
        child_id = f"{workflow.info().workflow_id}/{self._steps}-{flow_id}"
        try:
            self._child = await workflow.start_child_workflow(
                CallFlowWorkflow.run,
                child_input,
                id=child_id,
                static_summary=f"subflow {flow_id} of {self._graph.flow_id}",
            )
            result = await self._child
        except ChildWorkflowError as error:
            if self._stopping:
                raise asyncio.CancelledError() from None
            cause = error.cause or error
            return m.SubflowOutcome(m.FAILED, f"the subflow '{flow_id}' stopped: {cause}", {})
        finally:
            self._child = None
        # A subflow that hung up ends at a voice node, not at an ``end`` node.
        last = graph.nodes.get(result.last_node or "")
        ended = result.status == m.COMPLETED and last is not None and last.type != BUILTIN.roles["end"]
        return m.SubflowOutcome(result.status, result.reason, result.variables, call_ended=ended)

    async def _say(self, text: str) -> None:
        """Best effort: a hold message is a courtesy, so failing to say it is only recorded."""
        config = {"message": text, **self._voice_settings()}
        try:
            await self._run_activity(SAY_NODE, BUILTIN.roles["say"], config, timeout=60.0, rendered=True)
        except NodeFailure as failure:
            self._event("say_failed", str(failure), self._current)

    # ---- messages -------------------------------------------------------

    @workflow.signal(name=m.HANGUP_SIGNAL)
    def hangup(self, reason: str = "") -> None:
        """The caller hung up: cancel whatever runs and end as user_hangup."""
        if self._hangup is None:
            self._hangup = reason or "the caller hung up"

    @workflow.signal(name=m.SIGNAL_SIGNAL)
    async def signal(self, incoming: m.CallSignal) -> None:
        """A named external event for a node waiting for a signal."""
        await self._deliver(incoming.name, incoming.payload)

    @workflow.signal(dynamic=True)
    async def named_signal(self, name: str, args: Sequence[RawValue]) -> None:
        """Any other signal name is a named external event too (handy from the Temporal CLI)."""
        payload = workflow.payload_converter().from_payload(args[0].payload) if args else None
        await self._deliver(name, payload)

    @workflow.signal(name=m.VOICE_EVENT_SIGNAL)
    def voice_event(self, event: m.VoiceEvent) -> None:
        """A transcript or DTMF digits from the voice agent, kept for the call record."""
        self._note_voice_event(event)

    @workflow.signal(name=m.CALL_DATA_SIGNAL)
    def call_data(self, values: dict[str, Any]) -> None:
        """Caller data that arrived after the start (carrier, location): set as variables."""
        self._note_call_data(values)

    @workflow.query(name=m.STATE_QUERY)
    def state(self) -> m.CallSnapshot:
        """Where the call is: current node, path so far, variables."""
        return m.CallSnapshot(
            call_id=self._input.call_id,
            flow_id=self._graph.flow_id,
            flow_version=self._graph.version,
            status=self._ending.status if self._ending else m.RUNNING,
            current_node=self._current,
            path=list(self._path),
            variables=self._variables,
            steps=self._steps,
            runs=self._runs,
            waiting_for=self._waiting_for,
            subflow_workflow_id=self._child.id if self._child is not None else None,
            events=self._events,
            transcript=self._transcript,
        )


class _NodeServices:
    """The WorkflowServices lent to workflow-side plugins (see service_types)."""

    def __init__(self, call: CallFlowWorkflow) -> None:
        self._call = call

    async def receive_signal(self, name: str, timeout: float) -> m.SignalWait:
        return await self._call._receive_signal(name, timeout)

    async def run_subflow(self, flow_id: str, inputs: Mapping[str, Any]) -> m.SubflowOutcome:
        return await self._call._run_subflow(flow_id, inputs)

    async def say(self, text: str) -> None:
        await self._call._say(text)
