"""What ``voxflow worker`` adds from the environment: the voice bus, call records, live events.

- ``VOXFLOW_REDIS_URL``: the voice bus on Redis (the agents' side of calls) and the
  channel live events are published on (every ``voxflow serve`` replica listens);
- ``VOXFLOW_RECORDS_URL``: where call records are written (the same database the
  servers read). Without it the worker writes no records, and runs calls all the same.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping

from engine.runtime.services import RuntimeServices
from engine.server import events as ev
from engine.server.recorder import CallRecorder
from engine.server.records import RecordsStore, open_records

Closer = Callable[[], Awaitable[None]]


async def attach_from_env(services: RuntimeServices, env: Mapping[str, str] | None = None) -> list[Closer]:
    """Give ``services`` a voice bus and a recorder as configured; returns what to close."""
    env = os.environ if env is None else env
    redis_url = env.get("VOXFLOW_REDIS_URL", "").strip()
    records_url = env.get("VOXFLOW_RECORDS_URL", "").strip()
    closers: list[Closer] = []
    if redis_url and services.voice_bus is None:
        from engine.voice.redis_bus import RedisVoiceBus

        bus = RedisVoiceBus.from_url(redis_url)
        await bus.check()
        services.voice_bus = bus
        closers.append(bus.close)
    store: RecordsStore | None = None
    if records_url:
        store = await open_records(records_url).open()
        closers.append(store.close)
    publisher: ev.EventPublisher = ev.NullPublisher()
    if redis_url:
        publisher = ev.RedisPublisher(redis_url)
        closers.append(publisher.close)
    if store is not None or redis_url:
        services.recorder = CallRecorder(store, publisher)
    return closers


def describe(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    parts = []
    if env.get("VOXFLOW_REDIS_URL", "").strip():
        parts.append("voice bus and live events on Redis")
    if env.get("VOXFLOW_RECORDS_URL", "").strip():
        parts.append("call records written")
    return "; ".join(parts) or "no call records (VOXFLOW_RECORDS_URL is not set)"
