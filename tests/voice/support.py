"""Running voice nodes against a real bus and the simulated agent, for the tests."""

from __future__ import annotations

import asyncio
import importlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from engine.language.compile import FlowGraph, compile_flow
from engine.language.load import load_text
from engine.language.project import check_flow_document
from engine.language.registry import default_registry
from engine.language.templates import render_value
from engine.plugin_api import NodeContext, NodeResult
from engine.voice.bus import VoiceBus
from engine.voice.clock import ScaledClock
from engine.voice.memory_bus import MemoryVoiceBus
from engine.voice.redis_bus import RedisVoiceBus
from engine.voice.simulated_agent import CallerAction, SimulatedAgent
from tests.waiting import wait_until

# One flow second is 30 ms: "30 s of silence" takes 0.9 s, a 5 s no-input 0.15 s (long
# enough for a busy machine to answer in time, short enough for a quick suite).
CLOCK = ScaledClock(0.03)
# Fields the runtime does not render (engine.runtime.activities.ENGINE_FIELDS).
_ENGINE_FIELDS = frozenset({"timeout", "retry", "on_error", "max_visits", "description", "save_as"})


@dataclass
class Buses:
    """Makes buses of one kind; call ``make()`` inside the test's event loop."""

    kind: str
    redis_url: str | None = None
    made: list[VoiceBus] = field(default_factory=list)

    def make(self) -> VoiceBus:
        bus: VoiceBus
        if self.kind == "memory":
            bus = MemoryVoiceBus()
        else:
            assert self.redis_url is not None
            bus = RedisVoiceBus.from_url(self.redis_url)
        self.made.append(bus)
        return bus


def compiled(text: str) -> FlowGraph:
    document = load_text(text, "test.yaml")
    problems = [d.one_line() for d in check_flow_document(document, default_registry()) if d.is_error]
    assert problems == [], problems
    return compile_flow(document, default_registry())


def rendered(config: Mapping[str, Any], variables: Mapping[str, Any]) -> dict[str, Any]:
    """The config as the runtime hands it to a plugin: templates filled in."""
    return {k: v if k in _ENGINE_FIELDS else render_value(v, variables) for k, v in config.items()}


def new_call_id() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


async def execute(
    bus: VoiceBus,
    node_type: str,
    config: Mapping[str, Any],
    *,
    call_id: str,
    variables: Mapping[str, Any] | None = None,
    node_id: str = "node",
    call: Mapping[str, Any] | None = None,
) -> NodeResult:
    module = importlib.import_module(f"plugins.{node_type}")
    context = NodeContext(call_id, node_id, dict(variables or {}), dict(call or {}))
    services = SimpleNamespace(voice_bus=bus, voice_clock=CLOCK)
    result: NodeResult = await module.execute(rendered(config, variables or {}), context, services)
    return result


async def run_node(
    bus: VoiceBus,
    node_type: str,
    config: Mapping[str, Any],
    actions: Sequence[CallerAction] = (),
    **options: Any,
) -> tuple[NodeResult, SimulatedAgent]:
    """One node, with a simulated caller doing ``actions``."""
    call_id = new_call_id()
    agent = SimulatedAgent(bus, call_id, actions, clock=CLOCK)
    agent.start()
    try:
        result = await asyncio.wait_for(execute(bus, node_type, config, call_id=call_id, **options), 30)
    finally:
        await agent.stop(announce=False)
    return result, agent


@dataclass
class Walk:
    path: list[str]
    results: list[NodeResult]
    variables: dict[str, Any]
    agent: SimulatedAgent


async def walk(
    bus: VoiceBus,
    graph: FlowGraph,
    actions: Sequence[CallerAction] = (),
    *,
    start: str | None = None,
    variables: Mapping[str, Any] | None = None,
    call: Mapping[str, Any] | None = None,
    agent_options: Mapping[str, Any] | None = None,
) -> Walk:
    """Walk a flow's voice nodes as the runtime would (voice nodes only; others end the walk)."""
    call_id = new_call_id()
    agent = SimulatedAgent(bus, call_id, actions, clock=CLOCK, **dict(agent_options or {}))
    agent.start()
    values: dict[str, Any] = {**graph.variables, **dict(variables or {})}
    path: list[str] = []
    results: list[NodeResult] = []
    current: str | None = start or graph.start
    try:
        while current is not None and graph.node(current).type.startswith("voice_"):
            node = graph.node(current)
            path.append(node.id)
            result = await asyncio.wait_for(
                execute(
                    bus, node.type, node.config, call_id=call_id, variables=values, node_id=node.id, call=call
                ),
                30,
            )
            results.append(result)
            if node.config.get("save_as"):
                values[node.config["save_as"]] = dict(result.outputs)
            current = node.exit_target(result.exit) if result.exit else None
            if current is not None and not graph.node(current).type.startswith("voice_"):
                path.append(current)
                break
    finally:
        await agent.stop(announce=False)
    return Walk(path, results, values, agent)


def said(agent: SimulatedAgent) -> list[str]:
    """What the agent said, in order (interrupted prompts marked with '~')."""
    return [
        ("~" if line.interrupted else "") + line.text for line in agent.transcript if line.speaker == "agent"
    ]


def heard(agent: SimulatedAgent) -> list[str]:
    return [line.text for line in agent.transcript if line.speaker == "caller"]


def run(buses: Buses, scenario: Any) -> Any:
    """``asyncio.run`` a ``scenario(bus)`` with a fresh bus, closed afterwards."""

    async def main() -> Any:
        bus = buses.make()
        try:
            return await scenario(bus)
        finally:
            await bus.close()

    return asyncio.run(main())


async def blocked_readers(bus: VoiceBus, call_id: str, stream: str = "events") -> int:
    """How many reads of a call's ``stream`` wait on the bus right now (to wait for one
    to block before appending, instead of sleeping a while and hoping it has)."""
    if isinstance(bus, MemoryVoiceBus):
        call = bus._calls.get(call_id)  # noqa: SLF001 - the test looks at the waiters
        return 0 if call is None else len(getattr(call, stream).waiters)
    assert isinstance(bus, RedisVoiceBus)
    return await redis_blocked_readers(bus._client)  # noqa: SLF001


async def until_one_more_blocks(bus: VoiceBus, call_id: str, before: int, stream: str = "events") -> None:
    """Wait until more reads block than ``before`` (counted by :func:`blocked_readers`
    before the read started: on Redis others may be blocked on other calls' streams)."""

    async def more() -> bool:
        return await blocked_readers(bus, call_id, stream) > before

    await wait_until(more, what=f"a read of {call_id}'s {stream} to block on the bus")


async def redis_blocked_readers(client: Any) -> int:
    """Clients of a Redis server blocked in XREAD now (CLIENT LIST: flag ``b``)."""
    clients = await client.client_list()
    return sum(1 for c in clients if c.get("cmd") == "xread" and "b" in c.get("flags", ""))
