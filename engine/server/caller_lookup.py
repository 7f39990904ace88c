"""``caller_carrier`` and ``caller_location``: Telnyx Number Lookup, cached per number.

A lookup never delays the answer to Telnyx. A number seen lately is answered
from the cache, and its values go into the call's data when the call starts;
otherwise the lookup runs beside the call (with a short timeout) and its values
reach the running call as the ``call_data`` signal as soon as they are known,
so the nodes after that moment see them. A failed lookup is logged and cached
for a short while (so a Telnyx that is down is not asked at every call); the
variables stay unset.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from engine.server.telnyx_api import NumberFacts, TelnyxApi, TelnyxApiError

log = logging.getLogger(__name__)

CACHE_SECONDS = 24 * 3600.0  # carriers and localities change rarely
FAILURE_SECONDS = 60.0
CACHE_SIZE = 10_000


class CallerLookup:
    def __init__(self, api: TelnyxApi, clock: Callable[[], float] = time.monotonic) -> None:
        self._api = api
        self._clock = clock
        self._cache: OrderedDict[str, tuple[float, NumberFacts | None]] = OrderedDict()
        self._running: dict[str, asyncio.Future[NumberFacts | None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.lookups = 0  # requests sent to Telnyx (tests and metrics read it)

    def cached(self, number: str) -> NumberFacts | None:
        """What is known about ``number`` now, without asking anyone."""
        entry = self._cache.get(number)
        if entry is None:
            return None
        expires, facts = entry
        if expires < self._clock():
            del self._cache[number]
            return None
        self._cache.move_to_end(number)
        return facts

    def knows(self, number: str) -> bool:
        entry = self._cache.get(number)
        return entry is not None and entry[0] >= self._clock()

    async def look_up(self, number: str) -> NumberFacts | None:
        """Ask Telnyx (once for several calls from one number at the same time)."""
        if self.knows(number):
            return self.cached(number)
        running = self._running.get(number)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[NumberFacts | None] = asyncio.get_running_loop().create_future()
        self._running[number] = future
        try:
            self.lookups += 1
            try:
                facts: NumberFacts | None = await self._api.look_up(number)
                self._remember(number, facts, CACHE_SECONDS)
            except TelnyxApiError as error:
                log.warning("caller_carrier and caller_location not known: %s", error)
                facts = None
                self._remember(number, None, FAILURE_SECONDS)
            future.set_result(facts)
            return facts
        finally:
            self._running.pop(number, None)
            if not future.done():
                future.cancel()

    def _remember(self, number: str, facts: NumberFacts | None, seconds: float) -> None:
        self._cache[number] = (self._clock() + seconds, facts)
        self._cache.move_to_end(number)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)

    def in_background(self, number: str, deliver: Callable[[dict[str, str]], Awaitable[None]]) -> None:
        """Look ``number`` up beside the call; ``deliver`` its variables when known."""

        async def run() -> None:
            facts = await self.look_up(number)
            values = facts.variables() if facts is not None else {}
            if values:
                try:
                    await deliver(values)
                except Exception as error:  # the call ended meanwhile, Temporal is down
                    log.info("caller data for %s not delivered: %s", number, error)

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
