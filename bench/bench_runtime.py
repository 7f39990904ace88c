"""What a node transition costs on the Temporal dev server, against a bare activity round trip.

Run: ``python -m bench.bench_runtime`` (starts the embedded dev server, or uses
``TEMPORAL_ADDRESS`` when set). One process, one server, one worker, measured
in the same run:

bare round trip
    an empty workflow that awaits one empty activity, N times in a row; the
    cost of one activity step is the time per activity.
I/O node transition
    CallFlowWorkflow walking a loop of N ``database_query`` nodes (``SELECT 1``
    on an in-memory SQLite database, so the plugin's own work is tiny) with a
    ``set`` and a ``condition`` between them; the cost per I/O node includes
    moving along the exits, rendering the node's templates, the plugin lookup,
    the heartbeating wrapper and the variables carried to the activity.
    Target: at most 1.3x the bare round trip.
10,000 logic transitions
    one call whose ``set`` → ``condition`` loop runs 5,000 times (10,000
    transitions), start to result. Target: under 1 s.
run_node-shaped activity (``--breakdown``)
    the bare workflow's activity scheduled the way CallFlowWorkflow schedules
    ``run_node`` (timeouts, heartbeat timeout, retry policy, cancellation
    type, activity id) with a task and an outcome the size of the I/O node's,
    doing nothing: what Temporal charges for such a step. The rest, up to the
    I/O node transition, is voxflow's (the run_node activity, the workflow's
    walk, and each call's start and end spread over its nodes).

Each figure is the median of several repetitions, bare and voxflow runs
interleaved so that drift on the machine hits both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import textwrap
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python bench/bench_runtime.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from temporalio.client import Client

from bench.bare import BareWorkflow, ShapedWorkflow, echo_activity, empty_activity
from engine.language.compile import FlowGraph
from engine.language.project import compile_paths
from engine.runtime.calls import start_call
from engine.runtime.config import RuntimeConfig
from engine.runtime.messages import CallInput, CallOptions, NodeOutcome, NodeTask, flat_data
from engine.runtime.services import RuntimeServices
from engine.runtime.temporal_server import (
    EmbeddedTemporal,
    TemporalSettings,
    connect_client,
    temporal_settings_from_env,
)
from engine.runtime.worker import WorkerOptions, create_worker
from engine.runtime.workflow import initial_variables

IO_TARGET = 1.3
LOGIC_TARGET_SECONDS = 1.0


def flows_text(io_nodes: int) -> dict[str, str]:
    limit = io_nodes + 5
    return {
        "io.yaml": textwrap.dedent(f"""\
            flow: bench-io
            description: I/O nodes in a loop.
            variables:
              n: {{default: 0}}
            start: query
            nodes:
              query:
                type: database_query
                connection: bench
                query: "SELECT 1 AS one, :n AS n"
                params: {{n: "${{n}}"}}
                save_as: row
                next: bump
                max_visits: {limit}
              bump:
                type: set
                values: {{n: "${{n | int + 1}}"}}
                next: again
                max_visits: {limit}
              again:
                type: condition
                branches:
                  - if: n | int < {io_nodes}
                    next: query
                else: done
                max_visits: {limit}
              done:
                type: end
            """),
        "logic.yaml": textwrap.dedent("""\
            flow: bench-logic
            description: 10,000 logic-node transitions.
            variables:
              counter: {default: 0}
            start: bump
            nodes:
              bump:
                type: set
                values: {counter: "${counter | int + 1}"}
                next: again
                max_visits: 6000
              again:
                type: condition
                branches:
                  - if: counter | int < 5000
                    next: bump
                else: done
                max_visits: 6000
              done:
                type: end
            """),
    }


@dataclass
class Figures:
    bare_per_activity: list[float]
    io_per_node: list[float]
    logic_call: list[float]
    logic_steps: int
    shaped_per_activity: list[float]


def shaped_task(graph: FlowGraph) -> dict[str, Any]:
    """A task and outcome like those of the I/O flow's query node, halfway through a call."""
    row = {"one": 1, "n": 20}
    outcome = NodeOutcome(exit="next", outputs={**row, "rows": [row], "row_count": 1})
    variables = {
        **initial_variables(CallInput(graph=graph, call_id="bench-shaped")),
        "n": 20,
        "row": outcome.outputs,
    }
    task = NodeTask(
        call_id="bench-shaped",
        flow_id=graph.flow_id,
        node_id="query",
        node_type="database_query",
        config=dict(graph.nodes["query"].config),
        variables=variables,
        call={"settings": graph.settings},
        timeout=120.0,
        walked=[],
    )
    return {**flat_data(task), "outcome": flat_data(outcome)}


async def measure(
    client: Client,
    flows: dict[str, FlowGraph],
    io_nodes: int,
    repeats: int,
    task_queue: str,
    breakdown: bool = False,
) -> Figures:
    figures = Figures([], [], [], 0, [])
    shaped_input = shaped_task(flows["bench-io"])
    options = CallOptions(history_event_limit=50_000)
    for index in range(repeats + 1):  # the first round warms up and is discarded
        began = time.perf_counter()
        await client.execute_workflow(
            BareWorkflow.run, io_nodes, id=f"bench-bare-{uuid.uuid4()}", task_queue=task_queue
        )
        bare = (time.perf_counter() - began) / io_nodes

        if breakdown:
            began = time.perf_counter()
            await client.execute_workflow(
                ShapedWorkflow.run,
                args=[io_nodes, shaped_input],
                id=f"bench-shaped-{uuid.uuid4()}",
                task_queue=task_queue,
            )
            shaped = (time.perf_counter() - began) / io_nodes

        began = time.perf_counter()
        handle = await start_call(
            client, flows["bench-io"], f"bench-io-{uuid.uuid4()}", options=options, task_queue=task_queue
        )
        result = await handle.result()
        io = (time.perf_counter() - began) / io_nodes
        assert result.status == "completed", result.reason

        began = time.perf_counter()
        handle = await start_call(
            client,
            flows["bench-logic"],
            f"bench-logic-{uuid.uuid4()}",
            options=options,
            task_queue=task_queue,
        )
        result = await handle.result()
        logic = time.perf_counter() - began
        assert result.status == "completed", result.reason
        if index:
            figures.bare_per_activity.append(bare)
            figures.io_per_node.append(io)
            figures.logic_call.append(logic)
            figures.logic_steps = result.steps - 1  # transitions between the nodes walked
            if breakdown:
                figures.shaped_per_activity.append(shaped)
    return figures


async def run(settings: TemporalSettings, io_nodes: int, repeats: int, breakdown: bool = False) -> Figures:
    with tempfile.TemporaryDirectory() as folder:
        for name, text in flows_text(io_nodes).items():
            Path(folder, name).write_text(text, encoding="utf-8")
        flows = compile_paths([folder]).flows
    client = await connect_client(settings)
    task_queue = f"bench-{uuid.uuid4().hex[:8]}"
    services = RuntimeServices(RuntimeConfig(databases={"bench": "sqlite:///:memory:"}))
    worker = create_worker(
        client,
        services,
        WorkerOptions(task_queue=task_queue),
        extra_workflows=[BareWorkflow, ShapedWorkflow],
        extra_activities=[empty_activity, echo_activity],
    )
    async with worker:
        try:
            return await measure(client, flows, io_nodes, repeats, task_queue, breakdown)
        finally:
            await services.close()


def report(figures: Figures, server: str) -> bool:
    bare = statistics.median(figures.bare_per_activity)
    io = statistics.median(figures.io_per_node)
    logic = statistics.median(figures.logic_call)
    ratio = io / bare
    rows = [
        ("bare activity round trip", f"{bare * 1000:8.2f} ms", "1.00x", ""),
        (
            "I/O node transition",
            f"{io * 1000:8.2f} ms",
            f"{ratio:.2f}x",
            f"target <= {IO_TARGET}x: {'met' if ratio <= IO_TARGET else 'MISSED'}",
        ),
        (
            f"{figures.logic_steps:,} logic transitions",
            f"{logic * 1000:8.2f} ms",
            f"{logic / bare:.1f}x",
            f"target < {LOGIC_TARGET_SECONDS:g} s: {'met' if logic < LOGIC_TARGET_SECONDS else 'MISSED'}",
        ),
    ]
    print(f"voxflow runtime benchmark on {server} (median of {len(figures.io_per_node)} runs)")
    if figures.shaped_per_activity:
        shaped = statistics.median(figures.shaped_per_activity)
        rows.insert(
            1,
            (
                "run_node-shaped activity",
                f"{shaped * 1000:8.2f} ms",
                f"{shaped / bare:.2f}x",
                "Temporal's part (nothing runs)",
            ),
        )
    print(f"{'what':30} {'time':>11}  {'vs bare':>8}  result")
    for what, took, versus, verdict in rows:
        print(f"{what:30} {took:>11}  {versus:>8}  {verdict}")
    per_logic = logic / max(figures.logic_steps, 1) * 1e6
    print(f"per logic transition: {per_logic:.1f} us (whole call, start to result, included)")
    return ratio <= IO_TARGET and logic < LOGIC_TARGET_SECONDS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--io-nodes", type=int, default=40, help="I/O nodes per call")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also time an activity that does nothing, scheduled like run_node",
    )
    args = parser.parse_args(argv)
    settings = temporal_settings_from_env()
    if settings.address is not None:
        figures = asyncio.run(run(settings, args.io_nodes, args.repeats, args.breakdown))
        ok = report(figures, settings.address)
    else:
        with EmbeddedTemporal() as server:
            figures = asyncio.run(run(server.settings(), args.io_nodes, args.repeats, args.breakdown))
            ok = report(figures, f"the embedded dev server ({server.address})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
