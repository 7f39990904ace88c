"""Waiting in tests: on the thing itself, never on a fixed sleep.

A test that must wait for something to happen (a record to reach a status, a reader
to block, a watcher to start, a line to be printed) polls a condition with a deadline
through :func:`wait_until` (or :func:`wait_until_sync` outside an event loop). The
deadline is generous (a loaded CI machine is slow) and only bounds a failure: a test
that passes waits just as long as the thing takes. A test whose behaviour *is* a
stretch of time (a caller's silence, a server's delay) sleeps, with a comment saying so.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

INTERVAL = 0.02  # seconds between two looks: short against anything a test waits for
TIMEOUT = 20.0  # only reached when the thing never happens


async def wait_until(
    condition: Callable[[], T | Awaitable[T]],
    *,
    timeout: float = TIMEOUT,
    what: str = "the condition",
    interval: float = INTERVAL,
) -> T:
    """Call ``condition`` (sync or async) until it returns something truthy; return that.

    Raises AssertionError naming ``what`` and the last value seen once ``timeout``
    seconds pass (an exception raised by ``condition`` goes through at once).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; last: {_short(value)}")
        await asyncio.sleep(interval)


def wait_until_sync(
    condition: Callable[[], T],
    *,
    timeout: float = TIMEOUT,
    what: str = "the condition",
    interval: float = INTERVAL,
) -> T:
    """:func:`wait_until` for code that runs outside an event loop (child processes, files)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; last: {_short(value)}")
        time.sleep(interval)


def _short(value: object, limit: int = 2000) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
