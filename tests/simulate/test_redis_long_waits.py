"""A caller who thinks for a while: the Redis voice bus keeps waiting, and answers at once.

Regression test: redis-py 8 times sockets out after 5 s by default, which cut
every longer blocking read (the answer could then wait 50 ms for a retry) and
failed reads longer than 15 s as "Redis cannot be reached".
"""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as aioredis

from engine.voice.bus import START
from engine.voice.messages import Dtmf
from engine.voice.redis_bus import RedisVoiceBus


def test_a_read_outlasts_five_seconds_and_wakes_at_once(redis_url: str) -> None:
    async def scenario() -> tuple[list[str], float, list[int]]:
        reader, writer = RedisVoiceBus.from_url(redis_url), RedisVoiceBus.from_url(redis_url)
        admin = aioredis.Redis.from_url(redis_url)
        try:
            others = {c["id"] for c in await admin.client_list()}
            reading = asyncio.ensure_future(reader.read_events("long-wait", START, 8.0))
            await asyncio.sleep(5.2)  # the behaviour under test: the caller thinks past 5 s
            # The reader's XREAD is still the one it began with (a read cut at 5 s and asked
            # again would have waited a fraction of a second): blocked, idle for 5 s.
            idle = [
                int(c["idle"])
                for c in await admin.client_list()
                if c["id"] not in others and c.get("cmd") == "xread" and "b" in c.get("flags", "")
            ]
            published = time.perf_counter()
            await writer.publish_event("long-wait", Dtmf(digit="5"))
            entries = await reading
            took = time.perf_counter() - published
            return [e.digit for _, e in entries if isinstance(e, Dtmf)], took, idle
        finally:
            await reader.close()
            await writer.close()
            await admin.aclose()

    digits, took, idle = asyncio.run(scenario())
    assert digits == ["5"]
    assert len(idle) == 1 and idle[0] >= 5, idle
    # Woken by the entry, not by its read's end 2.8 s later (a bound no load can break:
    # that the wake-up is not delayed by a retry is what the idle time above shows).
    assert took < 1.0


def test_more_than_a_hundred_calls_can_wait_at_once(redis_url: str) -> None:
    """Each waiting reader holds a connection; redis-py 8's default pool stops at 100."""

    async def scenario() -> list[int]:
        bus = RedisVoiceBus.from_url(redis_url)
        try:
            waits = [bus.read_events(f"crowd-{n}", START, 1.0) for n in range(150)]
            return [len(entries) for entries in await asyncio.gather(*waits)]
        finally:
            await bus.close()

    assert asyncio.run(scenario()) == [0] * 150
