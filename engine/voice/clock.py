"""Time as the voice side sees it: real, or scaled so tests need not wait 30 seconds.

Every timeout a voice node keeps (no input, inter-digit, "are you still
there?") is written in the flow's seconds. A :class:`Clock` turns those into
real seconds for waiting: :data:`REAL_CLOCK` one to one, a
:class:`ScaledClock` faster (``ScaledClock(0.01)``: the 30 s silence check
takes 0.3 s). Both sides of a test (plugin and simulated agent) must use the
same clock.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Flow seconds, for deadlines (never goes backwards)."""
        ...

    def time(self) -> float:
        """Flow seconds since the epoch, for times remembered across processes."""
        ...

    def real(self, seconds: float) -> float:
        """How many real seconds ``seconds`` of flow time take."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of flow time."""
        ...


@dataclass(frozen=True)
class ScaledClock:
    """Flow time runs ``1 / scale`` times as fast as real time (scale 1: real time)."""

    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.scale <= 0:
            raise ValueError("a clock's scale must be above 0")

    def monotonic(self) -> float:
        return time.monotonic() / self.scale

    def time(self) -> float:
        return time.time() / self.scale

    def real(self, seconds: float) -> float:
        return max(seconds, 0.0) * self.scale

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(self.real(seconds))


REAL_CLOCK = ScaledClock(1.0)
