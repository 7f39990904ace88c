"""Walking a call's graph: one node after another, logic nodes right here (no history
events), every other node as the ``run_node`` activity; results saved, exits followed,
and the call continued as new between two nodes when its history grows long."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any, NoReturn

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

import engine.runtime.messages as m
from engine.language.compile import FlowNode
from engine.language.node_contract import NodeContext, NodeResult
from engine.language.templates import missing_variables
from engine.language.upcoming import upcoming_texts
from engine.runtime.builtin_nodes import BUILTIN
from engine.runtime.call_base import CallBase, Ending, NodeFailure
from engine.runtime.call_failures import TIMEOUT_GRACE, activity_problem
from engine.runtime.call_recording import RECORD_START_ATTEMPTS
from engine.runtime.recording import RECORD_NODE_REACHED, NodeReached

# Node types that run inside the workflow: voxflow's own, never the registry's (the
# workflow must not depend on what happens to be installed at replay time).
LOGIC_NODES = BUILTIN.logic
# Of those, the ones that never wait on Temporal (no history events).
INSTANT_NODES = BUILTIN.instant
ROLES = BUILTIN.roles
# Consecutive instant steps after which the walk yields through a 1 ms timer,
# so a very long logic loop never trips the SDK's 2 s deadlock detector.
LOGIC_SLICE = 25_000
LOGIC_PAUSE = "pause in a long logic loop"
# Extra attempts beyond the author's max_attempts, for attempts lost with a
# worker that was killed (heartbeat timeouts). See activities.py.
LOST_WORKER_RETRIES = 2


class CallWalk(CallBase):
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
                node.id,
                node.type,
                node.config,
                timeout=node.time_limit,
                # A question (a talking node that waits): what may be said after it.
                upcoming=upcoming_texts(self._graph, node.id)
                if node.talks_to_caller and node.waits
                else None,
            )
            if outcome.missing:
                self._missing(node, outcome.missing)
            return NodeResult(exit=outcome.exit, outputs=outcome.outputs, variables=outcome.variables)
        execute = LOGIC_NODES.get(node.type)
        if execute is None:
            raise NodeFailure(
                f"the node '{node.id}' has the type '{node.type}', which runs inside the "
                "workflow, but this version of voxflow cannot run it there."
            )
        if self._options.record and node.type not in INSTANT_NODES:
            # A node that waits here (a signal, a subflow) is reported by no activity.
            await self._record(
                RECORD_NODE_REACHED,
                NodeReached(
                    call_id=self._input.call_id,
                    root_flow_id=str(self._input.call.get("flow_id") or self._graph.flow_id),
                    flow_id=self._graph.flow_id,
                    node_id=node.id,
                    node_type=node.type,
                    walked=self._take_walked(),
                    variables=dict(self._variables),
                ),
                RECORD_START_ATTEMPTS,
                activity_id=f"{self._steps}:record:{node.id}",
            )
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

    async def _run_activity(
        self,
        node_id: str,
        node_type: str,
        config: Mapping[str, Any],
        *,
        timeout: float | None = None,
        rendered: bool = False,
        upcoming: list[str] | None = None,
    ) -> m.NodeOutcome:
        retry = config.get("retry") or {}
        attempts = int(retry.get("max_attempts", 1))
        backoff = float(retry.get("backoff", 1.0))
        limit = timeout or time_limit(config, self._options.default_node_timeout)
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
            upcoming=upcoming or [],
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
            raise NodeFailure(
                activity_problem(node_id, node_type, error, limit, self._options.heartbeat_timeout)
            ) from None
        self._unless_stopping()
        return m.from_flat_data(m.NodeOutcome, result)

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


def time_limit(config: Mapping[str, Any], default: float) -> float:
    """A node's time limit when it sets none (FlowNode.time_limit): the default,
    stretched to cover a ``max_duration`` the node declares (a recording may last
    longer than the default)."""
    longest = config.get("max_duration")
    if isinstance(longest, (int, float)):
        return max(default, float(longest) + 60.0)
    return default
