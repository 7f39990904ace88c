"""``CallFlowWorkflow``: one phone call, walking its compiled FlowGraph durably.

How a call runs:

- The input is the compiled graph itself (:class:`~engine.runtime.messages.CallInput`),
  so a call runs to its end on the flow version it started with, whatever
  happens to the file, and replay never reads files or the plugin registry.
- Logic nodes (``set``, ``condition``, ``end``) run right here, synchronously:
  they create no history events, so thousands of them cost microseconds.
  ``wait_for_signal`` and ``subflow`` also run here because they need
  workflow APIs (a durable timer and signals; a child workflow).
- Every other node runs as the generic ``run_node`` activity (see
  activities.py) with the node's timeout, its ``retry`` as a Temporal retry
  policy, a heartbeat timeout, and cancellation on hangup.
- A failed node goes to its ``on_error``; without one, to the flow's
  ``error_handler``; without one, the default handler apologises ("I'm having
  technical difficulties") through a ``voice_hangup`` activity. Either way
  the call is marked ``failed``, with the reason.
- Timers: ``max_call_duration`` (a warning event before it, a farewell, status
  ``timeout``), the engine's cap on total execution time, and per-node visit
  bounds (``max_visits``).
- When the history grows past ``options.history_event_limit`` (or Temporal
  suggests it), the call continues as new between two nodes, carrying its
  state (:class:`~engine.runtime.messages.CallState`).

Messages: the ``hangup`` signal, the generic ``signal`` signal
(:class:`~engine.runtime.messages.CallSignal`) plus any other signal name
(dynamic handler: ``temporal workflow signal --name supervisor_approved``),
``voice_event`` for transcripts and DTMF, and the ``state`` query.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, NoReturn

from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    TimeoutError as TemporalTimeoutError,
    TimeoutType,
)

with workflow.unsafe.imports_passed_through():
    from engine.compile import FlowGraph, FlowNode
    from engine.node_contract import NodeContext, NodeResult
    # Not ``from engine.runtime import messages``: the sandbox re-imports this
    # module's parent package engine.runtime for every run, and a from-import of
    # a submodule of that fresh package bypasses the pass-through, so messages.py
    # was executed again (all its dataclasses rebuilt) at the start of every call.
    import engine.runtime.messages as m
    from engine.runtime.recording import (
        RECORD_CALL_ENDED,
        RECORD_CALL_STARTED,
        RECORD_NODE_REACHED,
        CallClosed,
        CallOpened,
        NodeReached,
    )
    from engine.runtime.builtin_nodes import BUILTIN
    from engine.templates import missing_variables

# Node types that run inside the workflow: voxflow's own, never the registry's (the
# workflow must not depend on what happens to be installed at replay time).
LOGIC_NODES = BUILTIN.logic
# Of those, the ones that never wait on Temporal (no history events).
INSTANT_NODES = BUILTIN.instant
ROLES = BUILTIN.roles

PATH_LIMIT = 1000  # node ids kept for the query and result (steps counts them all)
EVENT_LIMIT = 200
TRANSCRIPT_LIMIT = 200
PENDING_SIGNAL_LIMIT = 50  # per signal name, received before anyone waits for it
# Consecutive instant steps after which the walk yields through a 1 ms timer,
# so a very long logic loop never trips the SDK's 2 s deadlock detector.
LOGIC_SLICE = 25_000
LOGIC_PAUSE = "pause in a long logic loop"
# Extra attempts beyond the author's max_attempts, for attempts lost with a
# worker that was killed (heartbeat timeouts). See activities.py.
LOST_WORKER_RETRIES = 2
TIMEOUT_GRACE = 5.0  # Temporal's start-to-close backstop beyond a node's own limit
FAREWELL_TIMEOUT = 30.0
APOLOGY = "I'm having technical difficulties. Please call again later. Goodbye."
TIME_UP = "We have reached the time limit for this call. Thank you for calling. Goodbye."
FAREWELL_NODE = "~farewell"  # not a valid node id, so it never clashes with one
SAY_NODE = "~say"
# Writing the call record (CallOptions.record): the start is tried briefly, so a
# records store that is down delays the caller by seconds at most; the end is
# tried for about ten minutes, since nothing waits for it.
RECORD_TIMEOUT = 10.0
RECORD_START_ATTEMPTS = 3
RECORD_END_ATTEMPTS = 25


class NodeFailure(Exception):
    """A node failed for good (after its retries); the message is for the call record."""


@dataclass(frozen=True)
class Ending:
    status: str
    reason: str


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


@workflow.defn(name=m.WORKFLOW_NAME)
class CallFlowWorkflow:
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
            await self._record(RECORD_CALL_STARTED, CallOpened(
                call_id=call_input.call_id, flow_id=self._graph.flow_id,
                flow_version=self._graph.version, call=dict(call_input.call),
                started_at=self._started_at,
            ), RECORD_START_ATTEMPTS)
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
            await self._record(RECORD_CALL_ENDED, CallClosed(
                call_id=self._input.call_id, flow_id=self._graph.flow_id,
                flow_version=self._graph.version, status=ending.status, reason=ending.reason,
                variables=self._variables, path=list(self._path), events=self._events,
                started_at=self._started_at, ended_at=workflow.now().timestamp(),
            ), RECORD_END_ATTEMPTS)
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

    def _records_call(self) -> bool:
        # A subflow's nodes are recorded (its activities carry the flag), but the
        # call's start and end belong to the workflow the call started.
        return self._options.record and not self._input.subflow

    async def _record(self, name: str, arg: Any, attempts: int,
                      activity_id: str | None = None) -> None:
        """Write the call record; a records store that stays down is noted, never fatal."""
        try:
            await workflow.execute_activity(
                name, arg,
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
                # (a wait_for_signal would then wait on, and the hangup be lost).
                raise asyncio.CancelledError() from None
            self._event("record_failed", f"the call record could not be written: "
                        f"{error.cause or error}", self._current)
        self._unless_stopping()

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
        left = _duration(self._options.warning_before)
        # Recorded now; spoken through the voice bus once voice nodes run.
        self._event("time_warning", f"the call will reach its maximum duration in {left}",
                    self._current)

    async def _time_up(self, kind: str) -> Ending:
        if kind == "max_call_duration":
            limit = self._call_limit() or 0.0
            reason = f"the call reached its maximum duration of {_duration(limit)}"
        else:
            reason = (
                "the call ran past voxflow's cap on total execution time "
                f"({_duration(self._options.max_execution_time)})"
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

    # ---- walking the graph ----------------------------------------------

    async def _walk(self) -> Ending:
        nodes = self._graph.nodes
        instant_streak = 0
        while True:
            node = nodes[self._current]
            visits = self._visits.get(node.id, 0) + 1
            self._visits[node.id] = visits
            if visits > node.max_visits:
                return await self._apologise_and_fail(
                    f"the call was stopped at the node '{node.id}': it came there more than "
                    f"{node.max_visits} times (its max_visits), so the flow is probably looping. "
                    "Give the loop a way out, or raise max_visits on that node."
                )
            self._path.append(node.id)
            if self._options.record:
                self._walked.append(node.id)
            self._steps += 1
            self._variables["call_duration"] = int(workflow.now().timestamp() - self._started_at)
            try:
                result = await self._run_node(node)
                target = self._follow(node, result)
            except NodeFailure as failure:
                if self._stopping:
                    raise asyncio.CancelledError() from None
                step = await self._after_failure(node, str(failure))
                if isinstance(step, Ending):
                    return step
                target = step
            if target is None:
                return self._end(node, result)
            self._current = target
            if node.type in INSTANT_NODES and node.runs_in == "workflow":
                instant_streak += 1
                if instant_streak >= LOGIC_SLICE:
                    instant_streak = 0
                    await workflow.sleep(0.001, summary=LOGIC_PAUSE)
            else:
                instant_streak = 0
                if self._history_is_long():
                    await self._continue_as_new()

    async def _run_node(self, node: FlowNode) -> NodeResult:
        if node.runs_in != "workflow":
            outcome = await self._run_activity(
                node.id, node.type, node.config, timeout=node.time_limit
            )
            if outcome.missing:
                self._missing(node, outcome.missing)
            return NodeResult(exit=outcome.exit, outputs=outcome.outputs,
                              variables=outcome.variables)
        execute = LOGIC_NODES.get(node.type)
        if execute is None:
            raise NodeFailure(
                f"the node '{node.id}' has the type '{node.type}', which runs inside the "
                "workflow, but this version of voxflow cannot run it there."
            )
        if self._options.record and node.type not in INSTANT_NODES:
            # A node that waits here (a signal, a subflow) is reported by no activity.
            await self._record(RECORD_NODE_REACHED, NodeReached(
                call_id=self._input.call_id,
                root_flow_id=str(self._input.call.get("flow_id") or self._graph.flow_id),
                flow_id=self._graph.flow_id, node_id=node.id, node_type=node.type,
                walked=self._take_walked(), variables=dict(self._variables),
            ), RECORD_START_ATTEMPTS, activity_id=f"{self._steps}:record:{node.id}")
        context = NodeContext(self._input.call_id, node.id, self._variables, self._input.call)
        try:
            with missing_variables() as missing:
                result = await execute(node.config, context, self._services)
            if missing:
                self._missing(node, missing)
            return result
        except NodeFailure:
            raise
        except workflow.NondeterminismError:
            raise
        except Exception as error:  # a template that fails, a bad value: the node failed
            raise NodeFailure(f"the node '{node.id}' ({node.type}) failed: {error}") from None

    def _missing(self, node: FlowNode, names: Sequence[str]) -> None:
        """A template read variables this call did not have: a warning on the call's record."""
        message = m.missing_message(self._graph.flow_id, node.id, list(names), self._input.call_id)
        self._event(m.VARIABLE_MISSING, message, node.id)
        if not workflow.unsafe.is_replaying():
            workflow.logger.warning("%s", message)

    def _follow(self, node: FlowNode, result: NodeResult) -> str | None:
        """Save the node's results and return the next node (None: the call ends here)."""
        if result.variables:
            self._variables.update(result.variables)
        ends_call = not result.exit or not node.exits
        save_as = node.config.get("save_as")
        # A wait that timed out leaves save_as as it was; so does a node that
        # ended the call (its outputs are then the call's status and reason).
        if save_as and result.outputs and not ends_call:
            self._variables[save_as] = dict(result.outputs)
        if ends_call:
            return None
        target = node.exit_target(result.exit)
        if target is None:
            names = ", ".join(e.name for e in node.exits)
            raise NodeFailure(
                f"the node '{node.id}' ({node.type}) chose the exit '{result.exit}', which it "
                f"does not have (it has: {names}). This is a bug in the {node.type} plugin."
            )
        return target

    def _end(self, node: FlowNode, result: NodeResult) -> Ending:
        if self._failure is not None:
            return Ending(m.FAILED, self._failure)
        if node.type == ROLES["end"]:
            return Ending(
                str(node.config.get("status") or m.COMPLETED),
                str(node.config.get("reason") or f"the call reached the end node '{node.id}'"),
            )
        ended_as = result.outputs.get("status") if result.outputs else None
        if ended_as in m.CALL_STATUSES:  # a subflow that ended the call
            return Ending(str(ended_as), str(result.outputs.get("reason", "")))
        if node.type == ROLES["transfer"]:
            return Ending(m.TRANSFERRED, f"the call was transferred at '{node.id}'")
        return Ending(m.COMPLETED, f"the call ended at '{node.id}'")

    async def _after_failure(self, node: FlowNode, message: str) -> str | Ending:
        """Where a failed node goes: on_error, else the error handler, else the apology."""
        self._event("node_failed", message, node.id)
        self._variables["last_error"] = {"node": node.id, "message": message}
        on_error = node.exit_target("on_error")
        if on_error is not None:
            return on_error
        if self._failure is not None:
            # A failure inside the error handler: do not go round it again.
            return Ending(
                m.FAILED, f"{self._failure}; then, in the error handler, {message}"
            )
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
            await self._run_activity(FAREWELL_NODE, ROLES["farewell"], config,
                                     timeout=FAREWELL_TIMEOUT, rendered=True)
        except NodeFailure as failure:
            self._event("farewell_failed", str(failure), self._current)
            return str(failure)
        self._event("farewell", message, self._current)
        return None

    def _voice_settings(self) -> dict[str, Any]:
        return {k: v for k, v in self._graph.settings.items() if k in ("voice", "language")}

    async def _run_activity(
        self,
        node_id: str,
        node_type: str,
        config: Mapping[str, Any],
        *,
        timeout: float | None = None,
        rendered: bool = False,
    ) -> m.NodeOutcome:
        retry = config.get("retry") or {}
        attempts = int(retry.get("max_attempts", 1))
        backoff = float(retry.get("backoff", 1.0))
        limit = timeout or _time_limit(config, self._options.default_node_timeout)
        task = m.NodeTask(
            call_id=self._input.call_id,
            flow_id=self._graph.flow_id,
            node_id=node_id,
            node_type=node_type,
            config=dict(config),
            variables=dict(self._variables),
            # The flow's settings ride along, so voice nodes see flow-wide rules
            # (low_confidence_threshold, rapid_interruptions, silence timers).
            call={**self._input.call, "settings": self._graph.settings},
            max_attempts=attempts,
            timeout=limit,
            rendered=rendered,
            record=self._options.record,
            walked=self._take_walked(),
        )
        try:
            # Sent and received as plain dicts, converted here: the same payload
            # bytes as the dataclasses, at a fraction of the workflow's CPU (see
            # messages.flat_data and from_flat_data).
            result = await workflow.execute_activity(
                m.RUN_NODE_ACTIVITY,
                m.flat_data(task),
                # The activity id names the node ("12:lookup") in the Temporal UI.
                # No ``summary=`` label beside it: user metadata is one more payload
                # per node, and in the sandbox the SDK steps into the workflow's
                # sandbox about four times for every payload of a workflow task
                # (serialization context lookups), ~0.3 ms of worker CPU per node.
                # Histories recorded with a summary still replay (metadata is not
                # part of the determinism check; tests/runtime/test_replay.py).
                activity_id=f"{self._steps}:{node_id}",
                start_to_close_timeout=timedelta(seconds=limit + TIMEOUT_GRACE),
                heartbeat_timeout=timedelta(seconds=self._options.heartbeat_timeout),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=max(backoff, 0.01)),
                    backoff_coefficient=2.0,
                    maximum_attempts=attempts + LOST_WORKER_RETRIES,
                ),
                cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            )
        except ActivityError as error:
            if self._stopping:
                raise asyncio.CancelledError() from None
            raise NodeFailure(_activity_problem(node_id, node_type, error, limit,
                                                self._options.heartbeat_timeout)) from None
        self._unless_stopping()
        return m.from_flat_data(m.NodeOutcome, result)

    def _take_walked(self) -> list[str]:
        walked = list(self._walked)
        self._walked.clear()
        return walked

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return (
            info.get_current_history_length() >= self._options.history_event_limit
            or info.is_continue_as_new_suggested()
        )

    async def _continue_as_new(self) -> NoReturn:
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._event("continued_as_new", f"run {self._runs + 1} of this call begins", self._current)
        state = m.CallState(
            current=self._current,
            variables=self._variables,
            visits=self._visits,
            path=list(self._path),
            steps=self._steps,
            started_at=self._started_at,
            events=self._events,
            pending_signals=self._pending,
            transcript=self._transcript,
            failure=self._failure,
            warned=self._warned,
            runs=self._runs + 1,
            hangup=self._hangup,
        )
        workflow.continue_as_new(replace(self._input, state=state))

    # ---- what workflow-side nodes may use (see _NodeServices) ------------

    async def _wait_for_signal(self, name: str, timeout: float) -> m.SignalWait:
        self._waiting_for = name
        try:
            await workflow.wait_condition(
                lambda: bool(self._pending.get(name)),
                timeout=timeout,
                timeout_summary=f"wait_for_signal {name}",
            )
        except TimeoutError:
            return m.SignalWait(arrived=False)
        finally:
            self._waiting_for = None
        queue = self._pending[name]
        payload = queue.pop(0)
        if not queue:
            del self._pending[name]
        return m.SignalWait(arrived=True, payload=payload)

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
                CallFlowWorkflow.run, child_input, id=child_id,
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
        ended = result.status == m.COMPLETED and last is not None and last.type != ROLES["end"]
        return m.SubflowOutcome(result.status, result.reason, result.variables, call_ended=ended)

    async def _say(self, text: str) -> None:
        """Best effort: a hold message is a courtesy, so failing to say it is only recorded."""
        config = {"message": text, **self._voice_settings()}
        try:
            await self._run_activity(SAY_NODE, ROLES["say"], config, timeout=60.0, rendered=True)
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
        """A named external event for a wait_for_signal node."""
        await self._deliver(incoming.name, incoming.payload)

    @workflow.signal(dynamic=True)
    async def named_signal(self, name: str, args: Sequence[RawValue]) -> None:
        """Any other signal name is a named external event too (handy from the Temporal CLI)."""
        payload = workflow.payload_converter().from_payload(args[0].payload) if args else None
        await self._deliver(name, payload)

    @workflow.signal(name=m.VOICE_EVENT_SIGNAL)
    def voice_event(self, event: m.VoiceEvent) -> None:
        """A transcript or DTMF digits from the voice agent, kept for the call record."""
        self._transcript.append(m.TranscriptEntry(self._elapsed(), event.kind, event.text,
                                                  event.confidence))
        del self._transcript[:-TRANSCRIPT_LIMIT]

    @workflow.signal(name=m.CALL_DATA_SIGNAL)
    def call_data(self, values: dict[str, Any]) -> None:
        """Caller data that arrived after the start (carrier, location): set as variables."""
        if not isinstance(values, dict):
            return
        for key, value in values.items():
            if key in m.AUTOMATIC_VARIABLES:
                self._variables[key] = value
                self._input.call[key] = value  # and for the nodes' call data

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

    async def _deliver(self, name: str, payload: Any) -> None:
        child = self._child
        if child is not None:
            # The call is inside a subflow: the signal is for it.
            try:
                await child.signal(m.SIGNAL_SIGNAL, m.CallSignal(name, payload))
                return
            except Exception as error:  # it ended meanwhile: keep the signal here
                self._event("signal_not_forwarded", f"'{name}': {error}", self._current)
        queue = self._pending.setdefault(name, [])
        if len(queue) >= PENDING_SIGNAL_LIMIT:
            self._event("signal_dropped", f"too many '{name}' signals waiting", self._current)
            return
        queue.append(payload)

    # ---- helpers --------------------------------------------------------

    def _elapsed(self) -> float:
        return round(workflow.now().timestamp() - self._started_at, 3)

    def _event(self, kind: str, message: str, node: str | None = None) -> None:
        self._events.append(m.CallEvent(self._elapsed(), kind, message, node))
        del self._events[:-EVENT_LIMIT]
        if not workflow.unsafe.is_replaying():
            workflow.logger.info("%s: %s", kind, message)


class _NodeServices:
    """The WorkflowServices lent to workflow-side plugins (see service_types)."""

    def __init__(self, call: CallFlowWorkflow) -> None:
        self._call = call

    async def wait_for_signal(self, name: str, timeout: float) -> m.SignalWait:
        return await self._call._wait_for_signal(name, timeout)

    async def run_subflow(self, flow_id: str, inputs: Mapping[str, Any]) -> m.SubflowOutcome:
        return await self._call._run_subflow(flow_id, inputs)

    async def say(self, text: str) -> None:
        await self._call._say(text)


def _activity_problem(
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
                f"(no sign of life for {_duration(heartbeat)}), and retrying did not help."
            )
        return f"{label} took longer than {_duration(limit + TIMEOUT_GRACE)}."
    return f"{label} failed: {cause or error}"


def _time_limit(config: Mapping[str, Any], default: float) -> float:
    """A node's time limit when it sets none (FlowNode.time_limit): the default,
    stretched to cover a ``max_duration`` the node declares (a recording may last
    longer than the default)."""
    longest = config.get("max_duration")
    if isinstance(longest, (int, float)):
        return max(default, float(longest) + 60.0)
    return default


def _duration(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"
