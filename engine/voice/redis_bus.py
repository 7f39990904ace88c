"""The voice bus on Redis Streams, for workers and agents in several processes.

Per call: ``voice:commands:{call_id}`` and ``voice:events:{call_id}`` are
streams (XADD with approximate MAXLEN trimming; XREAD from the last id seen),
``voice:state:{call_id}`` a hash of small JSON documents. Every write pushes
the keys' expiry forward, so an abandoned call's data goes away by itself;
:meth:`RedisVoiceBus.end_call` shortens it to a retention time.

Reconnecting: a read or write that fails with a connection error is retried,
with backoff, on a fresh connection for up to ``reconnect_for`` seconds. A
read is retried with the same "after" id, so a reader that loses its
connection (or its whole client: start a new bus and pass the id you had)
sees every entry once. A write retried after a connection that broke
mid-reply could append twice; Redis 6 has no idempotent XADD, and readers
match answers by request id, so a duplicate answer is ignored.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from engine.core.errors import VoxflowError
from engine.voice.bus import COMMANDS_KEY, EVENTS_KEY, START, STATE_KEY, Entry
from engine.voice.errors import BusUnavailable
from engine.voice.messages import Command, Event, command_from_json, event_from_json, to_json

_T = TypeVar("_T")
_FIELD = b"m"  # each stream entry holds one field: the message's JSON
_READ_COUNT = 200
# Connections per bus object (Redis itself accepts 10,000 clients by default).
MAX_CONNECTIONS = 5_000
# Connection errors worth a retry on a new connection; anything else is a bug or a
# misconfiguration and surfaces at once.
_TRANSIENT = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)


class RedisVoiceBus:
    """A :class:`~engine.voice.bus.VoiceBus` on one Redis server.

    ``ttl`` (seconds) is how long a call's keys live after their last write;
    ``retention`` how long they stay after :meth:`end_call`; ``maxlen`` the
    approximate number of entries a stream keeps.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        ttl: float = 24 * 3600.0,
        retention: float = 3600.0,
        maxlen: int = 10_000,
        reconnect_for: float = 15.0,
        where: str = "",
    ) -> None:
        self._client = client
        self._ttl = int(ttl)
        self._retention = int(retention)
        self._maxlen = maxlen
        self._reconnect_for = reconnect_for
        self._where = where or "Redis"
        self._pending_reads: dict[tuple[str, str], asyncio.Future[list[tuple[str, bytes]]]] = {}

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisVoiceBus:
        """``redis://host:port/db`` (``rediss://`` for TLS). Connects lazily; see :meth:`check`."""
        # No socket timeout: a blocking XREAD waits as long as its BLOCK says. redis-py 8
        # times sockets out after 5 s by default, which cut every longer wait, reconnected
        # (a read could miss events for 50 ms) and failed reads past 15 s as "unreachable".
        # Every waiting reader (one per call in a voice node) holds a connection while it
        # waits, so the pool must be larger than redis-py 8's default of 100.
        client = aioredis.Redis.from_url(
            url, decode_responses=False, socket_timeout=None, max_connections=MAX_CONNECTIONS
        )
        return cls(client, where=f"Redis at {_without_password(url)}", **options)

    async def check(self) -> None:
        """Fail now, in plain words, if Redis cannot be reached (for start-up)."""
        try:
            await self._client.ping()
        except RedisError as error:
            raise VoxflowError(
                f"The voice bus cannot reach {self._where}: {error}. Start Redis, set "
                "VOXFLOW_REDIS_URL to a server that runs, or use the in-memory bus."
            ) from None

    # ---- writing --------------------------------------------------------

    async def send_command(self, call_id: str, command: Command) -> str:
        return await self._append(call_id, COMMANDS_KEY, to_json(command))

    async def publish_event(self, call_id: str, event: Event) -> str:
        return await self._append(call_id, EVENTS_KEY, to_json(event))

    async def _append(self, call_id: str, key_format: str, text: str) -> str:
        key = key_format.format(call_id=call_id)

        async def append() -> str:
            # One round trip: the entry, and the key's expiry pushed forward.
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.xadd(key, {_FIELD: text.encode()}, maxlen=self._maxlen, approximate=True)
                pipe.expire(key, self._ttl)
                entry_id, _ = await pipe.execute()
            return _text(entry_id)

        return await self._retrying(append)

    # ---- reading --------------------------------------------------------

    async def read_commands(self, call_id: str, after: str, timeout: float) -> list[Entry[Command]]:
        raw = await self._read(COMMANDS_KEY.format(call_id=call_id), after, timeout)
        return [(entry_id, command_from_json(text)) for entry_id, text in raw]

    async def read_events(self, call_id: str, after: str, timeout: float) -> list[Entry[Event]]:
        raw = await self._read(EVENTS_KEY.format(call_id=call_id), after, timeout)
        return [(entry_id, event_from_json(text)) for entry_id, text in raw]

    async def _read(self, key: str, after: str, timeout: float) -> list[tuple[str, bytes]]:
        """XREAD, with the caller's timeout kept on this side.

        Redis checks blocked clients' timeouts only about ``hz`` times a second
        (10 by default), so ``BLOCK 100`` may answer after 200 ms. The caller's
        deadline is kept here instead: when it passes, the XREAD is left
        running and handed to the next read from the same id (reads from an id
        are idempotent, so a result nobody picks up is simply read again).
        """
        after = after or START
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            task = self._pending_reads.pop((key, after), None)
            if (
                task is not None
                and task.done()
                and (task.cancelled() or task.exception() is not None or not task.result())
            ):
                # Failed, or an old "nothing yet": entries may have come since, so ask again.
                task = None
            if left <= 0:
                if task is not None and task.done():
                    return task.result()  # entries read earlier are still the next ones
                if task is not None:  # still blocked for someone else's timeout: keep it
                    self._pending_reads[(key, after)] = task
                return await self._xread(key, after, 0)  # the round trip, no waiting
            if task is None:
                task = asyncio.ensure_future(self._xread(key, after, left))
            done, _ = await asyncio.wait({task}, timeout=left)
            if not done:
                self._pending_reads[(key, after)] = task
                task.add_done_callback(functools.partial(self._forget_read, key, after))
                return []
            entries = task.result()
            if entries or deadline - time.monotonic() <= 0:
                return entries
            # An earlier caller's read that ended empty: ask again for the time left.

    def _forget_read(self, key: str, after: str, task: asyncio.Future[Any]) -> None:
        # A read that finished after its caller gave up is kept only until its
        # block time is over; then the next read simply asks Redis again.
        def drop() -> None:
            if self._pending_reads.get((key, after)) is task:
                del self._pending_reads[(key, after)]

        if not task.cancelled() and task.exception() is None:
            asyncio.get_running_loop().call_later(1.0, drop)
        else:
            drop()

    async def _xread(self, key: str, after: str, timeout: float) -> list[tuple[str, bytes]]:
        deadline = time.monotonic() + max(timeout, 0.0)

        async def read() -> list[tuple[str, bytes]]:
            left = deadline - time.monotonic()
            # XREAD BLOCK 0 would wait forever: "no time left" is a plain read.
            block = int(left * 1000) if left >= 0.001 else None
            reply: Any = await self._client.xread({key: after}, count=_READ_COUNT, block=block)
            if isinstance(reply, dict):  # RESP3 answers a map of stream → entries
                reply = list(reply.items())
            entries: list[tuple[str, bytes]] = []
            for _stream, items in reply or ():
                for entry_id, fields in items:
                    entries.append((_text(entry_id), fields.get(_FIELD, b"{}")))
            return entries

        return await self._retrying(read)

    async def last_command_id(self, call_id: str) -> str:
        key = COMMANDS_KEY.format(call_id=call_id)

        async def newest() -> Any:
            return await self._client.xrevrange(key, "+", "-", count=1)

        entries = await self._retrying(newest)
        return _text(entries[0][0]) if entries else START

    # ---- state and lifetime --------------------------------------------

    async def load_state(self, call_id: str, owner: str) -> dict[str, Any] | None:
        key = STATE_KEY.format(call_id=call_id)

        async def load() -> Any:
            return await self._client.hget(key, owner)

        text = await self._retrying(load)
        return None if text is None else dict(json.loads(text))

    async def save_state(self, call_id: str, owner: str, state: Mapping[str, Any]) -> None:
        key = STATE_KEY.format(call_id=call_id)
        text = json.dumps(dict(state))

        async def save() -> None:
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.hset(key, owner, text)
                pipe.expire(key, self._ttl)
                await pipe.execute()

        await self._retrying(save)

    async def end_call(self, call_id: str) -> None:
        keys = [k.format(call_id=call_id) for k in (COMMANDS_KEY, EVENTS_KEY, STATE_KEY)]

        async def expire() -> None:
            async with self._client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.expire(key, self._retention)
                await pipe.execute()

        await self._retrying(expire)

    async def close(self) -> None:
        reads, self._pending_reads = list(self._pending_reads.values()), {}
        for task in reads:
            task.cancel()
        await asyncio.gather(*reads, return_exceptions=True)
        await self._client.aclose()

    # ---- reconnecting ---------------------------------------------------

    async def _retrying(self, operation: Callable[[], Awaitable[_T]]) -> _T:
        """Run ``operation``, retrying on a new connection while Redis is unreachable."""
        give_up_at: float | None = None
        delay = 0.05
        while True:
            try:
                return await operation()
            except _TRANSIENT as error:
                now = time.monotonic()
                give_up_at = give_up_at or now + self._reconnect_for
                if now >= give_up_at:
                    raise BusUnavailable(
                        f"the voice bus ({self._where}) could not be reached for "
                        f"{self._reconnect_for:g} seconds: {error}"
                    ) from None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _without_password(url: str) -> str:
    """The URL as it may be shown in a message: ``redis://:secret@host`` loses its secret."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{rest.split('@', 1)[1]}"
