"""On Redis nothing is lost or duplicated when a side reconnects mid-call."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path

import redis.asyncio as aioredis

from engine.voice.bus import StreamCursor
from engine.voice.messages import Dtmf, Event, Listen
from engine.voice.redis_bus import RedisVoiceBus
from engine.voice.redis_server import EmbeddedRedis
from engine.voice.simulated_agent import Say
from tests.voice.support import (
    CLOCK,
    blocked_readers,
    compiled,
    execute,
    new_call_id,
    said,
    until_one_more_blocks,
)
from tests.waiting import wait_until

COUNT = 300


async def _publish(bus: RedisVoiceBus, call: str, start: int, stop: int) -> None:
    for number in range(start, stop):
        await bus.publish_event(call, Dtmf(request_id=str(number), digit="1"))
        if number % 25 == 0:
            await asyncio.sleep(0.001)  # let the reader interleave


async def _kill_clients(url: str) -> int:
    admin = aioredis.Redis.from_url(url)
    try:
        killed: int = await admin.client_kill_filter(_type="normal", skipme=True)
        return killed
    finally:
        await admin.aclose()


def test_a_reader_that_replaces_its_client_resumes_from_its_last_id(redis_url: str) -> None:
    async def scenario() -> list[str]:
        call = new_call_id()
        writer = RedisVoiceBus.from_url(redis_url)
        reader = RedisVoiceBus.from_url(redis_url)
        seen: list[str] = []
        cursor: StreamCursor[Event] = StreamCursor(functools.partial(reader.read_events, call))
        producing = asyncio.ensure_future(_publish(writer, call, 0, COUNT))
        while len(seen) < COUNT:
            entry = await cursor.next(2.0)
            assert entry is not None
            seen.append(entry[1].request_id)
            if len(seen) in (COUNT // 3, 2 * COUNT // 3):
                # The consumer goes away (its connections closed) and a new one
                # starts from the id it had reached.
                position = cursor.position
                await reader.close()
                reader = RedisVoiceBus.from_url(redis_url)
                cursor = StreamCursor(functools.partial(reader.read_events, call), position)
        await producing
        await writer.close()
        await reader.close()
        return seen

    assert asyncio.run(scenario()) == [str(n) for n in range(COUNT)]


def test_connections_killed_by_the_server_are_reopened_transparently(redis_url: str) -> None:
    async def scenario() -> tuple[list[str], int]:
        call = new_call_id()
        writer = RedisVoiceBus.from_url(redis_url)
        reader = RedisVoiceBus.from_url(redis_url)
        cursor: StreamCursor[Event] = StreamCursor(functools.partial(reader.read_events, call))
        seen: list[str] = []
        killed = 0

        async def consume() -> None:
            while len(seen) < COUNT:
                entry = await cursor.next(5.0)
                assert entry is not None
                seen.append(entry[1].request_id)

        before = await blocked_readers(writer, call)
        consumer = asyncio.ensure_future(consume())
        await _publish(writer, call, 0, COUNT // 2)
        await wait_until(lambda: len(seen) == COUNT // 2, what="the first half to be read")
        await until_one_more_blocks(writer, call, before)  # the reader waits in XREAD now
        killed += await _kill_clients(redis_url)  # both sides lose every connection
        await _publish(writer, call, COUNT // 2, COUNT)
        await asyncio.wait_for(consumer, 10)
        await writer.close()
        await reader.close()
        return seen, killed

    seen, killed = asyncio.run(scenario())
    assert killed >= 2
    assert seen == [str(n) for n in range(COUNT)]


def test_a_menu_survives_its_connections_being_killed_mid_call(redis_url: str) -> None:
    graph = compiled("""
flow: t
settings: {barge_in: true, no_input_timeout: 60s}
start: menu
nodes:
  menu:
    type: voice_menu
    prompt: "Say balance or agent."
    options:
      - {key: "1", phrases: [balance], next: done}
      - {key: "0", phrases: [agent], next: done}
  done: {type: end}
""")

    async def scenario() -> tuple[str, list[str], str]:
        from engine.voice.simulated_agent import SimulatedAgent

        call = new_call_id()
        plugin_bus = RedisVoiceBus.from_url(redis_url)
        agent_bus = RedisVoiceBus.from_url(redis_url)
        # The caller says nothing until the kill has landed, while the menu listens.
        agent = SimulatedAgent(agent_bus, call, clock=CLOCK)
        agent.start()
        node = asyncio.ensure_future(
            execute(plugin_bus, "voice_menu", graph.node("menu").config, call_id=call)
        )
        await wait_until(
            lambda: any(isinstance(c, Listen) for c in agent.commands), what="the menu to listen"
        )
        assert await _kill_clients(redis_url) >= 2
        agent.add(Say("agent please"))
        result = await asyncio.wait_for(node, 10)
        await agent.stop(announce=False)
        await plugin_bus.close()
        await agent_bus.close()
        return result.exit, said(agent), f"{result.outputs} {agent.transcript} {agent.commands}"

    exit_name, spoken, details = asyncio.run(scenario())
    assert exit_name == "options[1].next", details
    assert spoken == ["Say balance or agent."]


def test_both_sides_carry_on_when_the_redis_server_restarts(tmp_path: Path) -> None:
    """With an append-only file the streams survive a restart; clients reconnect by themselves."""
    server = EmbeddedRedis(data_dir=tmp_path, appendonly=True)
    server.start()

    async def scenario() -> list[str]:
        call = new_call_id()
        writer = RedisVoiceBus.from_url(server.url)
        reader = RedisVoiceBus.from_url(server.url)
        cursor: StreamCursor[Event] = StreamCursor(functools.partial(reader.read_events, call))
        seen: list[str] = []

        async def consume(count: int) -> None:
            while len(seen) < count:
                entry = await cursor.next(5.0)
                assert entry is not None
                seen.append(entry[1].request_id)

        await _publish(writer, call, 0, 50)
        await consume(50)
        before = await blocked_readers(writer, call)
        waiting = asyncio.ensure_future(consume(100))  # blocked in XREAD during the restart
        await until_one_more_blocks(writer, call, before)
        await asyncio.get_running_loop().run_in_executor(None, server.restart)
        await _publish(writer, call, 50, 100)
        await asyncio.wait_for(waiting, 10)
        await writer.close()
        await reader.close()
        return seen

    try:
        assert asyncio.run(scenario()) == [str(n) for n in range(100)]
    finally:
        server.stop()
