"""Flow time for ``voxflow chat``: it stands still while the person at the keyboard thinks.

In a real call the caller's silence is measured in seconds; in a terminal a
person takes a while to read a prompt and type an answer. So in chat, flow
time (the clock the voice nodes use for their no-input and silence timers)
only runs while the caller has something to do: an answer queued, a
``/silence 6`` going on. A timer that waits while time stands still simply
waits longer: :meth:`PausableClock.real` hands out short waits while it
stands still, so waiters look again soon after it runs again.
"""

from __future__ import annotations

import asyncio
import threading
import time

# While time stands still, waiters wake this often (real seconds) to look again.
PAUSED_POLL = 0.2


class PausableClock:
    """A :class:`~engine.voice.clock.Clock` whose time runs or stands still.

    While it runs, ``rate`` flow seconds pass per real second (1: real time;
    the chat tests use a faster rate so a ``/silence 6`` does not take 6 s).
    """

    def __init__(self, running: bool = False, rate: float = 1.0) -> None:
        if rate <= 0:
            raise ValueError("a clock's rate must be above 0")
        self.rate = rate
        self._lock = threading.Lock()
        self._running = running
        self._anchor_real = time.monotonic()
        self._anchor_flow = 0.0
        self._epoch = time.time()

    @property
    def running(self) -> bool:
        return self._running

    def set_running(self, running: bool) -> None:
        with self._lock:
            if running == self._running:
                return
            now = time.monotonic()
            self._anchor_flow = self._flow(now)
            self._anchor_real = now
            self._running = running

    def monotonic(self) -> float:
        with self._lock:
            return self._flow(time.monotonic())

    def time(self) -> float:
        return self._epoch + self.monotonic()

    def real(self, seconds: float) -> float:
        seconds = max(seconds, 0.0)
        if self._running:
            return seconds / self.rate  # a waiter woken after time stopped looks again
        # Time stands still: wait a little and look again, since it may start meanwhile.
        return min(seconds, PAUSED_POLL)

    async def sleep(self, seconds: float) -> None:
        until = self.monotonic() + seconds
        while (left := until - self.monotonic()) > 0:
            await asyncio.sleep(self.real(left))

    def _flow(self, now: float) -> float:
        if not self._running:
            return self._anchor_flow
        return self._anchor_flow + (now - self._anchor_real) * self.rate
