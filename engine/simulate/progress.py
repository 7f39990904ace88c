"""Following a running call's path for ``voxflow chat``: its nodes and failures, subflows included.

The call's ``state`` query gives its path so far (and the workflow id of a
subflow it is in, whose own ``state`` gives that subflow's path). Each look
yields what is new since the last, in the order it happened: a subflow that
ended since shows its last nodes before the nodes its caller went on to,
and a node's failure right after the node.

What the agent says comes from the bus, quicker than a query answers, so a
look may already see the node after the one that is speaking. So a look
that precedes an agent line shows new nodes only up to the first voice
node (the one speaking); the rest waits for the next look.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio.client import Client
from temporalio.exceptions import TemporalError

from engine.language.compile import FlowGraph
from engine.language.registry import talks_to_caller
from engine.runtime import messages as m


@dataclass(frozen=True)
class Step:
    """One thing to show: a node walked (``kind`` node) or a call event."""

    kind: str  # "node" or "event"
    text: str
    workflow_id: str
    index: int  # in the workflow's path or events
    voice: bool = False
    event: m.CallEvent | None = None


@dataclass
class _Run:
    """What has been shown of one workflow (the call, or a subflow)."""

    label: str  # "" for the call's own flow, "account-balance" for a subflow
    graph: FlowGraph
    path_shown: int = 0
    events_shown: set[int] = field(default_factory=set)
    children: list[str] = field(default_factory=list)  # subflows started, oldest first


class PathFollower:
    def __init__(self, client: Client, workflow_id: str, graph: FlowGraph) -> None:
        self.client = client
        self.root = workflow_id
        self._runs: dict[str, _Run] = {workflow_id: _Run("", graph)}

    async def look(self, *, up_to_voice: bool) -> list[Step]:
        """What to show now; marks it shown. ``up_to_voice``: stop after the first voice node."""
        steps = await self._collect(self.root)
        if up_to_voice:
            for position, step in enumerate(steps):
                if step.kind == "node" and step.voice:
                    # ... and the failures of that node, which come right after it.
                    end = position + 1
                    while (
                        end < len(steps)
                        and steps[end].kind == "event"
                        and (steps[end].workflow_id == step.workflow_id)
                    ):
                        end += 1
                    steps = steps[:end]
                    break
        for step in steps:
            run = self._runs[step.workflow_id]
            if step.kind == "node":
                run.path_shown = max(run.path_shown, step.index + 1)
            else:
                run.events_shown.add(step.index)
        return steps

    async def _collect(self, workflow_id: str) -> list[Step]:
        run = self._runs[workflow_id]
        try:
            snapshot: m.CallSnapshot = await self.client.get_workflow_handle(workflow_id).query(
                m.STATE_QUERY, result_type=m.CallSnapshot
            )
        except TemporalError:
            return []
        steps: list[Step] = []
        for child in list(run.children):
            if child != snapshot.subflow_workflow_id:  # ended since: its last nodes first
                last = await self._collect(child)
                steps += last
                if not last:
                    run.children.remove(child)
        walked = list(enumerate(snapshot.path))[run.path_shown :]
        # A node's failure goes right after it (its last visit, if it was walked more than once).
        last_visit = {node_id: index for index, node_id in walked}
        after: dict[int, list[Step]] = {}
        for index, event in enumerate(snapshot.events):
            if index in run.events_shown:
                continue
            step = Step("event", event.message, workflow_id, index, event=event)
            if event.node in last_visit:
                after.setdefault(last_visit[event.node], []).append(step)
            else:
                steps.append(step)  # about a node shown before
        for index, node_id in walked:
            node = run.graph.nodes.get(node_id)
            label = f"{run.label} › " if run.label else ""
            kind = f" ({node.type})" if node is not None else ""
            voice = node is not None and talks_to_caller(node.type)
            steps.append(Step("node", f"{label}{node_id}{kind}", workflow_id, index, voice))
            steps += after.get(index, [])
        child_id = snapshot.subflow_workflow_id
        if child_id:
            if child_id not in self._runs:
                sub = _subflow_of(run.graph, child_id)
                if sub is None:
                    return steps
                label = f"{run.label} › {sub.flow_id}" if run.label else sub.flow_id
                self._runs[child_id] = _Run(label, sub)
                run.children.append(child_id)
            steps += await self._collect(child_id)
        return steps


def _subflow_of(graph: FlowGraph, child_id: str) -> FlowGraph | None:
    """The compiled subflow a child workflow runs: its id is ``<call's id>/<step>-<flow id>``."""
    flow_id = child_id.rsplit("/", 1)[-1].partition("-")[2]
    return graph.subflows.get(flow_id)
