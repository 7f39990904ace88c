"""Running conversation tests on the real engine, several at once.

Each test is one call on a shared :class:`~engine.simulate.session.SimulatorEngine`
(one Temporal server, one worker, one voice bus), with its own call id, its
own scripted caller and its own fixed answers, so tests run concurrently.

Time: voice timers (no input, inter-digit, "are you still there?") run on a
scaled clock, and the workflow's durable timers (a wait for a signal)
are scaled when the test's copy of the flow is prepared, so a test of a
3-minute wait does not take 3 minutes. Timeouts of whole nodes and calls
(a node's ``timeout``, ``max_call_duration``) keep their real length: they
are backstops a test should never reach.

Caller turns are handed to the scripted caller as the conversation reaches
them (see :class:`_Script`); it performs each when the flow is ready for
it. A ``signal`` turn waits until the flow (or a subflow) waits for that
signal, sends it, and then hands over the turns after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from temporalio.client import Client
from temporalio.exceptions import TemporalError

from engine.language.compile import FlowGraph, FlowNode, with_version
from engine.language.registry import awaited_signal
from engine.runtime import messages as m
from engine.runtime.calls import send_signal
from engine.simulate.conversation import AgentTurn, CallerTurn, ConversationTest, SignalTurn
from engine.simulate.expectations import CallOutcome, check
from engine.simulate.fixtures import CallAnswers
from engine.simulate.session import CallSetup, SimulatedCall, SimulatorEngine
from engine.simulate.trace import CallTrace, trace_call
from engine.voice.simulated_agent import Line

# Flow seconds per real second: voice timers run 10 times faster than real time
# (a 5 s no-input takes 0.5 s: faster made a busy 2-core machine miss a caller's
# turn now and then), durable workflow timers 100 times.
VOICE_SCALE = 1 / 10
TIMER_SCALE = 1 / 100
DEFAULT_CONCURRENCY = 4
_POLL = 0.05


@dataclass
class TestResult:
    test: ConversationTest
    problems: list[str]
    outcome: CallOutcome
    seconds: float

    @property
    def passed(self) -> bool:
        return not self.problems

    @property
    def trace(self) -> CallTrace | None:
        return self.outcome.trace


async def run_tests(
    engine: SimulatorEngine,
    tests: Sequence[ConversationTest],
    flows: Mapping[str, FlowGraph],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    timer_scale: float = TIMER_SCALE,
    on_result: Callable[[TestResult], None] | None = None,
) -> list[TestResult]:
    """Run ``tests``; results in the order of ``tests``, each reported as it finishes."""
    limit = asyncio.Semaphore(max(1, concurrency))
    prepared = {flow_id: scaled(graph, timer_scale) for flow_id, graph in flows.items()}

    async def one(test: ConversationTest) -> TestResult:
        async with limit:
            result = await run_test(engine, test, prepared[test.flow_id])
        if on_result is not None:
            on_result(result)
        return result

    return list(await asyncio.gather(*(one(test) for test in tests)))


async def run_test(engine: SimulatorEngine, test: ConversationTest, graph: FlowGraph) -> TestResult:
    began = time.monotonic()
    setup = CallSetup(
        caller_number=test.caller,
        called_number=test.called,
        variables=dict(test.variables),
        answers=CallAnswers(dict(test.answers), strict=True),
        failing_transfers=test.failing_transfers,
    )
    script = _Script(test)
    call = SimulatedCall(engine, graph, setup, on_line=script.on_line)
    script.call = call
    problems: list[str] = []
    result: m.CallResult | None = None
    trace: CallTrace | None = None
    try:
        async with call:
            try:
                result = await asyncio.wait_for(_drive(call, script, problems), test.timeout)
            except TimeoutError:
                problems.append(await _still_going(call, test.timeout))
            if result is not None:
                trace = await trace_call(engine.client, graph, result, m.workflow_id(call.call_id))
    except TemporalError as error:
        problems.append(f"the engine could not run this call: {error}")
    caller = call.caller
    outcome = CallOutcome(
        result,
        trace,
        list(caller.transcript) if caller else [],
        list(caller.commands) if caller else [],
        problems,
    )
    return TestResult(test, check(test, outcome), outcome, time.monotonic() - began)


class _Script:
    """Hands the test's caller turns to the scripted caller as the conversation reaches them.

    A caller turn is handed over once the agent has said what the turns before
    it expect (so the caller answers after hearing the question, and hangs up
    after hearing what the test says it heard); a ``barge_in`` turn one agent
    turn earlier, so that it cuts into that one. Agent lines are matched as
    they are said (engine.simulate.expectations checks the whole conversation
    afterwards), and turns are handed over from the caller's own line callback,
    before the agent side goes on, so there is no race with the flow.
    """

    def __init__(self, test: ConversationTest) -> None:
        self.agent_turns = [t for t in test.turns if isinstance(t, AgentTurn)]
        self.steps: list[tuple[int, CallerTurn | SignalTurn]] = []
        heard = 0
        for index, turn in enumerate(test.turns):
            if isinstance(turn, AgentTurn):
                heard += 1
                continue
            cuts_in = (
                isinstance(turn, CallerTurn)
                and getattr(turn.action, "barge_in", False)
                and index > 0
                and isinstance(test.turns[index - 1], AgentTurn)
            )
            self.steps.append((heard - 1 if cuts_in else heard, turn))
        self.matched = 0
        self.position = 0
        self.call: SimulatedCall | None = None
        self.changed = asyncio.Event()

    def on_line(self, line: Line) -> None:
        if (
            line.speaker == "agent"
            and self.matched < len(self.agent_turns)
            and self.agent_turns[self.matched].accepts(line.text)
        ):
            self.matched += 1
        self.hand_over()
        self.changed.set()

    def hand_over(self) -> None:
        """Give the caller every turn that is due, up to the next signal."""
        while (
            self.call is not None
            and self.call.caller is not None
            and (step := self.next_step()) is not None
            and isinstance(step, CallerTurn)
        ):
            self.call.add(step.action)
            self.position += 1

    def next_step(self) -> CallerTurn | SignalTurn | None:
        """The next turn to hand over, if the conversation has reached it."""
        if self.position >= len(self.steps):
            return None
        gate, turn = self.steps[self.position]
        return turn if self.matched >= gate else None


async def _drive(call: SimulatedCall, script: _Script, problems: list[str]) -> m.CallResult:
    ending = asyncio.ensure_future(call.result())
    try:
        script.hand_over()
        while not ending.done():
            step = script.next_step()
            if isinstance(step, SignalTurn):
                if not await _await_wait(call, step.name, ending):
                    problems.append(
                        f"turn at line {step.line}: the flow never waited for the "
                        f"signal '{step.name}' (the call ended first), so it was "
                        "not sent."
                    )
                    break
                await send_signal(call.engine.client, call.call_id, step.name, step.payload)
                script.position += 1
                script.hand_over()
                continue
            script.changed.clear()
            waiter = asyncio.ensure_future(script.changed.wait())
            await asyncio.wait({ending, waiter}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
        return await ending
    finally:
        if not ending.done():
            ending.cancel()


async def _await_wait(call: SimulatedCall, name: str, ending: asyncio.Future[m.CallResult]) -> bool:
    """Wait until the call (or a subflow of it) waits for the signal ``name``."""
    client = call.engine.client
    while not ending.done():
        if name in await _waiting_for(client, m.workflow_id(call.call_id)):
            return True
        await asyncio.wait({ending}, timeout=_POLL)
    return False


async def _waiting_for(client: Client, workflow_id: str) -> list[str]:
    """The signal names the call and its running subflows wait for."""
    names = []
    while workflow_id:
        try:
            snapshot: m.CallSnapshot = await client.get_workflow_handle(workflow_id).query(
                m.STATE_QUERY, result_type=m.CallSnapshot
            )
        except TemporalError:
            break
        if snapshot.waiting_for:
            names.append(snapshot.waiting_for)
        workflow_id = snapshot.subflow_workflow_id or ""
    return names


async def _still_going(call: SimulatedCall, timeout: float) -> str:
    """Describe a call that did not end in time, then end it."""
    where = ""
    with contextlib.suppress(Exception):
        snapshot = await call.state()
        where = f", at the node '{snapshot.current_node}'" + (
            f" waiting for the signal '{snapshot.waiting_for}'" if snapshot.waiting_for else ""
        )
    if call.handle is not None:
        with contextlib.suppress(Exception):
            await call.handle.terminate("the conversation test gave up on it")
    return (
        f"the call was still going after {timeout:g} s{where}. A caller whose turns have "
        "run out stays silent: end the test with '- hangup', or expect the flow to end it."
    )


def scaled(graph: FlowGraph, factor: float) -> FlowGraph:
    """``graph`` with its durable timers (a wait for a signal) ``factor`` times as long."""
    if factor == 1:
        return graph
    nodes = {node_id: _scaled_node(node, factor) for node_id, node in graph.nodes.items()}
    subflows = {flow_id: scaled(sub, factor) for flow_id, sub in graph.subflows.items()}
    # A graph of its own, so a version of its own (the runtime caches graphs by version).
    return with_version(replace(graph, nodes=nodes, subflows=subflows))


def _scaled_node(node: FlowNode, factor: float) -> FlowNode:
    if awaited_signal(node.type, node.config) is None or not isinstance(
        node.config.get("timeout"), (int, float)
    ):
        return node
    return replace(node, config={**node.config, "timeout": node.config["timeout"] * factor})
