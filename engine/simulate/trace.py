"""What a finished call did: the nodes it walked and the exits it took, in every flow it entered.

The path comes from the call's result (and, for each subflow, from the
child workflow's result or its ``state`` query). Which exit a node took is
read from the workflow history: every node that runs as an activity records
its outcome (``NodeOutcome.exit``) or its failure (then the flow went on
along ``on_error``). Nodes that run inside the workflow (``RUNS_IN =
"workflow"``) leave no such record, so for them the exit is
known by where the call went next: when two of their exits lead to the same
node, both count as taken.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import TemporalError

from engine.language.compile import FlowGraph
from engine.language.registry import called_flow
from engine.runtime import messages as m

FAILED = "\0failed"  # an activity node that failed (marker, never an exit name)


@dataclass
class FlowRun:
    """One run of one flow within a call: the call's own flow, or a subflow."""

    flow_id: str
    workflow_id: str
    path: list[str]
    exits: list[tuple[str, str]] = field(default_factory=list)  # (node id, exit name)
    status: str = ""
    events: list[m.CallEvent] = field(default_factory=list)
    children: list[FlowRun] = field(default_factory=list)  # its subflows, in order
    subflow_calls: dict[str, str] = field(default_factory=dict)  # subflow node id → flow id

    def describe(self) -> str:
        """``welcome → menu → balance [account-balance: greet → ask] → goodbye``."""
        children = list(self.children)
        parts = []
        for node_id in self.path:
            called = self.subflow_calls.get(node_id)
            child = next((c for c in children if c.flow_id == called), None)
            if child is not None:
                children.remove(child)
                parts.append(f"{node_id} [{child.flow_id}: {child.describe()}]")
            else:
                parts.append(node_id)
        return " → ".join(parts) if parts else "(no nodes)"


@dataclass
class CallTrace:
    """Every flow run of a call: the call's own (``root``) and its subflows."""

    graph: FlowGraph
    root: FlowRun

    @property
    def runs(self) -> list[FlowRun]:
        found: list[FlowRun] = []
        todo = [self.root]
        while todo:
            run = todo.pop(0)
            found.append(run)
            todo[:0] = run.children
        return found

    def nodes(self, flow_id: str) -> Iterator[str]:
        for run in self.runs:
            if run.flow_id == flow_id:
                yield from run.path

    def all_events(self) -> Iterator[m.CallEvent]:
        for run in self.runs:
            yield from run.events


async def trace_call(client: Client, graph: FlowGraph, result: m.CallResult, workflow_id: str) -> CallTrace:
    """Read the call's history (and its subflows') once it has ended."""
    root = await _trace_run(client, graph, workflow_id, result.path, result.status, result.events)
    return CallTrace(graph, root)


async def _trace_run(
    client: Client,
    graph: FlowGraph,
    workflow_id: str,
    path: list[str],
    status: str,
    events: list[m.CallEvent],
) -> FlowRun:
    run = FlowRun(graph.flow_id, workflow_id, list(path), status=status, events=list(events))
    run.subflow_calls = {
        node.id: flow
        for node in graph.nodes.values()
        if (flow := called_flow(node.type, node.config)) is not None
    }
    handle = client.get_workflow_handle(workflow_id)
    outcomes, children = await _read_history(client, handle)
    run.exits = _exits(graph, run.path, outcomes)
    for child_id, flow_id in children:
        sub = graph.subflows.get(flow_id)
        if sub is None:
            continue
        child_path, child_status, child_events = await _child_outcome(client, child_id)
        run.children.append(await _trace_run(client, sub, child_id, child_path, child_status, child_events))
    return run


async def _read_history(
    client: Client, handle: WorkflowHandle[object, object]
) -> tuple[dict[int, str], list[tuple[str, str]]]:
    """Activity outcomes by step (1-based, as the workflow counts), and the subflows started."""
    converter = client.data_converter.payload_converter
    scheduled: dict[int, int] = {}  # history event id → step
    outcomes: dict[int, str] = {}
    children: list[tuple[str, str]] = []
    history = await handle.fetch_history()
    for event in history.events:
        kind = event.WhichOneof("attributes")
        if kind == "activity_task_scheduled_event_attributes":
            step, _, node_id = event.activity_task_scheduled_event_attributes.activity_id.partition(":")
            if step.isdigit() and not node_id.startswith("~"):  # not a farewell or hold message
                scheduled[event.event_id] = int(step)
        elif kind == "activity_task_completed_event_attributes":
            done = event.activity_task_completed_event_attributes
            step_number = scheduled.get(done.scheduled_event_id)
            if step_number is not None and done.result.payloads:
                outcome = converter.from_payloads(done.result.payloads, [m.NodeOutcome])[0]
                outcomes[step_number] = outcome.exit
        elif kind in ("activity_task_failed_event_attributes", "activity_task_timed_out_event_attributes"):
            step_number = scheduled.get(getattr(event, kind).scheduled_event_id)
            if step_number is not None:
                outcomes[step_number] = FAILED
        elif kind == "start_child_workflow_execution_initiated_event_attributes":
            child = event.start_child_workflow_execution_initiated_event_attributes
            child_input = converter.from_payloads(child.input.payloads, [m.CallInput])[0]
            children.append((child.workflow_id, child_input.graph.flow_id))
    return outcomes, children


async def _child_outcome(client: Client, workflow_id: str) -> tuple[list[str], str, list[m.CallEvent]]:
    handle = client.get_workflow_handle(workflow_id, result_type=m.CallResult)
    try:
        result: m.CallResult = await handle.result()
        return result.path, result.status, result.events
    except TemporalError:
        pass  # cancelled (the caller hung up during it): ask where it was
    try:
        snapshot: m.CallSnapshot = await handle.query(m.STATE_QUERY, result_type=m.CallSnapshot)
        return snapshot.path, "cancelled", snapshot.events
    except TemporalError:
        return [], "unknown", []


def _exits(graph: FlowGraph, path: list[str], outcomes: dict[int, str]) -> list[tuple[str, str]]:
    taken: list[tuple[str, str]] = []
    for index, node_id in enumerate(path):
        node = graph.nodes.get(node_id)
        if node is None:
            continue
        following = path[index + 1] if index + 1 < len(path) else None
        outcome = outcomes.get(index + 1)
        if outcome == FAILED:
            if following is not None and node.exit_target("on_error") == following:
                taken.append((node_id, "on_error"))
            continue
        if outcome is not None:
            if outcome:  # "" ended the call
                taken.append((node_id, outcome))
            continue
        if following is None:
            continue
        # A node run inside the workflow: known by where the call went.
        taken += [(node_id, e.name) for e in node.exits if e.target == following]
    return taken
