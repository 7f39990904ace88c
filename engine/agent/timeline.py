"""One clock for a harnessed call: seconds since the call started.

The caller's audio, the agent's recorded audio and the session's events are
all placed on it, so "the caller started speaking at 2.43 s and the prompt's
last sound was at 2.61 s" compares like with like. Pacing uses the monotonic
clock; livekit-agents stamps its events with ``time.time()``, which
:meth:`from_wall` converts.
"""

from __future__ import annotations

import asyncio
import time


class Timeline:
    def __init__(self) -> None:
        self._mono0 = time.monotonic()
        self._wall0 = time.time()

    def restart(self) -> None:
        """Make now time 0 (before anything is placed on the timeline)."""
        self._mono0 = time.monotonic()
        self._wall0 = time.time()

    def now(self) -> float:
        return time.monotonic() - self._mono0

    def from_wall(self, wall: float) -> float:
        """A ``time.time()`` stamp (as on livekit-agents events) on this timeline."""
        return wall - self._wall0

    def to_wall(self, at: float) -> float:
        return at + self._wall0

    async def sleep_until(self, at: float) -> None:
        delay = at - self.now()
        if delay > 0:
            await asyncio.sleep(delay)
