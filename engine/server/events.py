"""Live events: what the monitor page and API clients watch as calls happen.

Event types (the seed's set, each about one call):

``call:incoming``          a call arrived (caller, called number, flow it will run)
``call:active``            its workflow began on a pinned flow version
``call:transcript``        a turn of speech or a key press; ``is_final`` false for interim words
``call:node_change``       the call entered a node (and the logic nodes walked on the way)
``call:variable_updated``  a variable got a new value
``call:ended``             status, reason and duration
``call:error``             a node failed, or the call failed

plus ``flows:reloaded`` (a hot reload's outcome, per server) and ``node:finished``
(a node's latency, read by the metrics; not sent to clients).

How events travel. Workers publish them from the activities that write the
call record (engine.server.recorder); servers fan them out to their SSE and
WebSocket clients through an :class:`EventHub`. Between processes they go
over Redis pub/sub (one channel; every server replica subscribes, so a client
of any replica sees every call, whichever worker runs it). In one process
(``voxflow dev``, tests) a :class:`LocalPublisher` hands them straight to the
hub. Pub/sub is fire-and-forget: a client that reconnects reads the current
state from the API (the records) and carries on from the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)

CALL_INCOMING = "call:incoming"
CALL_ACTIVE = "call:active"
CALL_TRANSCRIPT = "call:transcript"
CALL_NODE_CHANGE = "call:node_change"
CALL_VARIABLE_UPDATED = "call:variable_updated"
CALL_ENDED = "call:ended"
CALL_ERROR = "call:error"
# A template read a variable the call did not have (engine.runtime.messages.VARIABLE_MISSING).
CALL_VARIABLE_MISSING = "call:variable_missing"
FLOWS_RELOADED = "flows:reloaded"
NODE_FINISHED = "node:finished"
CALL_EVENT_TYPES = (
    CALL_INCOMING,
    CALL_ACTIVE,
    CALL_TRANSCRIPT,
    CALL_NODE_CHANGE,
    CALL_VARIABLE_UPDATED,
    CALL_ENDED,
    CALL_ERROR,
    CALL_VARIABLE_MISSING,
)
CLIENT_EVENT_TYPES = (*CALL_EVENT_TYPES, FLOWS_RELOADED)
REDIS_CHANNEL = "voxflow:live"
SUBSCRIBER_QUEUE = 1000  # events a slow client may fall behind before it misses some
RECENT_EVENTS = 500  # kept per hub, for clients resuming with Last-Event-ID


@dataclass(frozen=True)
class LiveEvent:
    type: str
    call_id: str | None = None
    flow_id: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "call_id": self.call_id,
            "flow_id": self.flow_id,
            "at": self.at,
            "data": dict(self.data),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), default=str, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> LiveEvent:
        raw = json.loads(text)
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            raise ValueError("a live event must be a JSON object with a 'type'")
        data = raw.get("data")
        return cls(
            type=raw["type"],
            call_id=raw.get("call_id"),
            flow_id=raw.get("flow_id"),
            data=data if isinstance(data, dict) else {},
            at=float(raw.get("at") or time.time()),
        )


class EventPublisher(Protocol):
    async def publish(self, event: LiveEvent) -> None: ...

    async def close(self) -> None: ...


@dataclass(eq=False)  # kept in a set: identity, not value
class Subscription:
    """One client's view: events matching its call / flow, through a bounded queue."""

    call_id: str | None
    flow_id: str | None
    types: frozenset[str]
    queue: asyncio.Queue[tuple[int, LiveEvent]] = field(
        default_factory=lambda: asyncio.Queue(SUBSCRIBER_QUEUE)
    )
    dropped: int = 0

    def wants(self, event: LiveEvent) -> bool:
        if event.type not in self.types:
            return False
        if self.call_id is not None and event.call_id != self.call_id:
            return False
        if self.flow_id is not None and event.type != FLOWS_RELOADED:
            return event.flow_id == self.flow_id
        return True

    def offer(self, number: int, event: LiveEvent) -> None:
        if self.queue.full():
            # A client that does not keep up loses its oldest events, not the server's memory.
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait((number, event))


class EventHub:
    """Fans events out to subscribers in this process; numbers them for Last-Event-ID."""

    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()
        self._listeners: list[Callable[[LiveEvent], None]] = []
        self._recent: deque[tuple[int, LiveEvent]] = deque(maxlen=RECENT_EVENTS)
        self._numbers = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Remember the loop the clients live on (deliveries from other threads go through it)."""
        self._loop = loop or asyncio.get_running_loop()

    def listen(self, listener: Callable[[LiveEvent], None]) -> None:
        """Call ``listener`` for every event (metrics); it must be quick and not raise."""
        self._listeners.append(listener)

    def deliver(self, event: LiveEvent) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is not loop:
                loop.call_soon_threadsafe(self._deliver, event)
                return
        self._deliver(event)

    def _deliver(self, event: LiveEvent) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:  # a listener's bug must not stop the stream
                log.exception("live event listener failed")
        if event.type not in CLIENT_EVENT_TYPES:
            return
        number = next(self._numbers)
        self._recent.append((number, event))
        for subscription in list(self._subscriptions):
            if subscription.wants(event):
                subscription.offer(number, event)

    @contextlib.asynccontextmanager
    async def subscribe(
        self,
        call_id: str | None = None,
        flow_id: str | None = None,
        types: Iterable[str] = CLIENT_EVENT_TYPES,
        after: int | None = None,
    ) -> AsyncIterator[Subscription]:
        subscription = Subscription(call_id, flow_id, frozenset(types))
        if after is not None:
            for number, event in self._recent:
                if number > after and subscription.wants(event):
                    subscription.offer(number, event)
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)


class LocalPublisher:
    """Publishing into a hub in the same process (``voxflow dev``, tests)."""

    def __init__(self, hub: EventHub) -> None:
        self.hub = hub

    async def publish(self, event: LiveEvent) -> None:
        self.hub.deliver(event)

    async def close(self) -> None:
        return None


class NullPublisher:
    """For a worker with nobody to tell (records only)."""

    async def publish(self, event: LiveEvent) -> None:
        return None

    async def close(self) -> None:
        return None


class RedisPublisher:
    """PUBLISH on :data:`REDIS_CHANNEL`; a Redis that is down loses live events, never a call."""

    def __init__(self, url: str) -> None:
        import redis.asyncio as aioredis

        self._client = aioredis.Redis.from_url(url)
        self._warned_at = 0.0

    async def publish(self, event: LiveEvent) -> None:
        try:
            await self._client.publish(REDIS_CHANNEL, event.to_json())
        except Exception as error:  # live events are best effort; the record is the truth
            if time.monotonic() - self._warned_at > 60:
                self._warned_at = time.monotonic()
                log.warning("live events could not be published to Redis: %s", error)

    async def close(self) -> None:
        await self._client.aclose()


class RedisRelay:
    """Subscribes to :data:`REDIS_CHANNEL` and hands what arrives to a hub, reconnecting."""

    def __init__(self, url: str, hub: EventHub) -> None:
        self.url = url
        self.hub = hub
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())
        # Subscribed before the server takes requests, so no early event is missed.
        await asyncio.wait_for(self.ready.wait(), 10)

    async def _run(self) -> None:
        import redis.asyncio as aioredis

        delay = 0.2
        while True:
            client = aioredis.Redis.from_url(self.url)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(REDIS_CHANNEL)
                    self.ready.set()
                    delay = 0.2
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        try:
                            self.hub.deliver(LiveEvent.from_json(message["data"]))
                        except (ValueError, TypeError) as error:
                            log.warning("ignored a malformed live event: %s", error)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("live events: Redis subscription lost (%s); retrying", error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await client.aclose()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
