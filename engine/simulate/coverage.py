"""Which nodes and exits of each flow the conversation tests reached.

An exit is one of a node's compiled exits (engine.language.compile.Exit): ``next``,
``options[1].next``, ``no_input[1].next``, ``on_error``, ... A node is
reached when any test's call (or a subflow within it) walked it; an exit
when a call left the node that way (see engine.simulate.trace for how).

Some exits no call can take: the ``next`` of a subflow node whose flow has
no ``end`` node (it always hangs up or transfers, which ends the whole
call). They are listed apart and left out of the percentages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from engine.language.compile import Exit, FlowGraph
from engine.language.registry import called_flow, engine_role
from engine.simulate.trace import CallTrace


@dataclass
class FlowCoverage:
    flow_id: str
    file: str
    nodes: list[str]
    exits: list[tuple[str, Exit]]
    reached: set[str] = field(default_factory=set)
    taken: set[tuple[str, str]] = field(default_factory=set)
    tests: int = 0  # tests whose call entered this flow
    impossible: dict[tuple[str, str], str] = field(default_factory=dict)  # exit → why

    @property
    def missed_nodes(self) -> list[str]:
        return [node for node in self.nodes if node not in self.reached]

    @property
    def missed_exits(self) -> list[tuple[str, Exit]]:
        return [(node, e) for node, e in self.possible_exits if (node, e.name) not in self.taken]

    @property
    def possible_exits(self) -> list[tuple[str, Exit]]:
        return [(node, e) for node, e in self.exits if (node, e.name) not in self.impossible]

    @property
    def nodes_reached(self) -> int:
        return len(self.nodes) - len(self.missed_nodes)

    @property
    def exits_taken(self) -> int:
        return len(self.possible_exits) - len(self.missed_exits)


def measure(flows: Mapping[str, FlowGraph], traces: Iterable[CallTrace]) -> list[FlowCoverage]:
    """Coverage of every flow in ``flows`` by the calls in ``traces``."""
    table = {
        flow_id: FlowCoverage(
            flow_id,
            graph.source,
            list(graph.nodes),
            [(node.id, e) for node in graph.nodes.values() for e in node.exits],
            impossible=impossible_exits(graph),
        )
        for flow_id, graph in sorted(flows.items())
    }
    for trace in traces:
        entered: set[str] = set()
        for run in trace.runs:
            coverage = table.get(run.flow_id)
            if coverage is None:
                continue
            entered.add(run.flow_id)
            coverage.reached.update(run.path)
            coverage.taken.update(run.exits)
        for flow_id in entered:
            table[flow_id].tests += 1
    return list(table.values())


def describe_exit(node_id: str, exit_: Exit) -> str:
    """``ask no_match[1].next (no match) → transfer``."""
    label = f" ({exit_.label})" if exit_.label and exit_.label != exit_.name else ""
    return f"{node_id} {exit_.name}{label} → {exit_.target}"


def impossible_exits(graph: FlowGraph) -> dict[tuple[str, str], str]:
    """Exits no call can take, and why: a subflow that never comes back."""
    found: dict[tuple[str, str], str] = {}
    for node in graph.nodes.values():
        flow = called_flow(node.type, node.config)
        called = graph.subflows.get(flow) if flow is not None else None
        if called is not None and not any(engine_role(n.type) == "end" for n in called.nodes.values()):
            found[(node.id, "next")] = (
                f"'{called.flow_id}' has no end node, so it never comes back: it ends the call"
            )
    return found
