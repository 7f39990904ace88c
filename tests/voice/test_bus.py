"""The bus protocol, on both implementations: ordered logs per call, read after an id."""

from __future__ import annotations

import asyncio
import functools
import time

import redis.asyncio as aioredis

from engine.voice.bus import START, StreamCursor, VoiceBus
from engine.voice.messages import Dtmf, Event, Speak, Stop, TtsComplete
from engine.voice.redis_bus import RedisVoiceBus
from tests.voice.support import Buses, blocked_readers, new_call_id, run, until_one_more_blocks
from tests.waiting import wait_until


def test_commands_and_events_are_logs_per_call(buses: Buses) -> None:
    async def scenario(bus: VoiceBus) -> None:
        call, other = new_call_id(), new_call_id()
        first = await bus.send_command(call, Speak(request_id="r1", text="Hi"))
        await bus.send_command(call, Stop(request_id="r2", target="r1"))
        await bus.send_command(other, Speak(request_id="x", text="Other call"))
        await bus.publish_event(call, TtsComplete(request_id="r1"))
        commands = await bus.read_commands(call, START, 0)
        assert [c for _, c in commands] == [
            Speak(request_id="r1", text="Hi"),
            Stop(request_id="r2", target="r1"),
        ]
        assert commands[0][0] == first
        after_first = await bus.read_commands(call, first, 0)
        assert [c for _, c in after_first] == [Stop(request_id="r2", target="r1")]
        assert [e for _, e in await bus.read_events(call, START, 0)] == [TtsComplete(request_id="r1")]
        assert await bus.last_command_id(call) == commands[-1][0]
        assert await bus.last_command_id(new_call_id()) == START

    run(buses, scenario)


def test_a_blocked_read_wakes_on_append_and_times_out_empty(buses: Buses) -> None:
    async def scenario(bus: VoiceBus) -> None:
        call = new_call_id()
        started = time.monotonic()
        assert await bus.read_events(call, START, 0.1) == []
        assert time.monotonic() - started >= 0.09
        before = await blocked_readers(bus, call)
        reader = asyncio.ensure_future(bus.read_events(call, START, 5))
        await until_one_more_blocks(bus, call, before)
        await bus.publish_event(call, Dtmf(digit="5"))
        got = await asyncio.wait_for(reader, 2)
        assert [e for _, e in got] == [Dtmf(digit="5")]

    run(buses, scenario)


def test_a_read_that_does_not_wait_sees_what_came_after_an_earlier_empty_read(
    buses: Buses,
) -> None:
    """A read that gave up leaves its question to Redis running (engine.voice.redis_bus);
    its empty answer must not be handed, later, to a read that asks what is there now."""

    async def scenario(bus: VoiceBus) -> None:
        call = new_call_id()
        assert await bus.read_events(call, START, 0.05) == []  # gives up; Redis answers later
        if isinstance(bus, RedisVoiceBus):  # until that answer (nothing) has come back
            key = (f"voice:events:{call}", START)
            pending = bus._pending_reads  # noqa: SLF001 - the read the bus left running
            await wait_until(lambda: key not in pending or pending[key].done(), what="Redis's answer")
        await bus.publish_event(call, Dtmf(digit="7"))
        assert [e for _, e in await bus.read_events(call, START, 0)] == [Dtmf(digit="7")]

    run(buses, scenario)


def test_state_documents_per_call_and_owner(buses: Buses) -> None:
    async def scenario(bus: VoiceBus) -> None:
        call = new_call_id()
        assert await bus.load_state(call, "plugin") is None
        await bus.save_state(call, "plugin", {"cursor": "3-0", "rapid": True})
        await bus.save_state(call, "agent", {"agent_id": "a"})
        assert await bus.load_state(call, "plugin") == {"cursor": "3-0", "rapid": True}
        assert await bus.load_state(call, "agent") == {"agent_id": "a"}

    run(buses, scenario)


def test_a_cursor_skips_messages_it_cannot_decode(buses: Buses) -> None:
    async def scenario(bus: VoiceBus) -> None:
        call = new_call_id()
        await bus.publish_event(call, Dtmf(digit="1"))
        if isinstance(bus, RedisVoiceBus):  # a message from a newer agent version
            await bus._client.xadd(f"voice:events:{call}", {b"m": b'{"type": "speech:mood"}'})
        await bus.publish_event(call, Dtmf(digit="2"))
        cursor: StreamCursor[Event] = StreamCursor(functools.partial(bus.read_events, call))
        got = [await cursor.next(0.5), await cursor.next(0.5), await cursor.next(0.05)]
        assert [entry[1] if entry else None for entry in got] == [Dtmf(digit="1"), Dtmf(digit="2"), None]

    run(buses, scenario)


def test_redis_keys_expire_and_streams_are_trimmed(redis_url: str) -> None:
    async def scenario() -> None:
        call = new_call_id()
        bus = RedisVoiceBus(aioredis.Redis.from_url(redis_url), ttl=600, retention=30, maxlen=50)
        probe = aioredis.Redis.from_url(redis_url)
        try:
            for index in range(500):
                await bus.publish_event(call, Dtmf(digit=str(index % 10)))
            await bus.save_state(call, "plugin", {"cursor": "0"})
            key = f"voice:events:{call}"
            assert 0 < await probe.ttl(key) <= 600
            assert await probe.xlen(key) < 200  # approximate trimming keeps about maxlen
            await bus.end_call(call)
            for name in ("events", "state"):
                assert 0 < await probe.ttl(f"voice:{name}:{call}") <= 30
        finally:
            await bus.close()
            await probe.aclose()

    asyncio.run(scenario())
