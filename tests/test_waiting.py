"""The tests' one way of waiting (tests/waiting.py): the value, or a plain timeout."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from tests.waiting import wait_until, wait_until_sync


def test_wait_until_returns_the_first_truthy_value_of_a_sync_or_async_condition() -> None:
    counter = itertools.count()

    async def later() -> int:
        return next(counter)

    async def scenario() -> tuple[int, int]:
        ticks = itertools.count()
        first = await wait_until(lambda: max(next(ticks) - 2, 0), interval=0)
        second = await wait_until(later, interval=0)
        return first, second

    assert asyncio.run(scenario()) == (1, 1)
    ticks = itertools.count()
    assert wait_until_sync(lambda: next(ticks) >= 3, interval=0) is True


def test_a_condition_never_met_fails_naming_what_was_awaited_and_the_last_value() -> None:
    async def scenario() -> None:
        await wait_until(lambda: [], timeout=0.05, what="the record")

    with pytest.raises(AssertionError, match=r"waiting for the record; last: \[\]"):
        asyncio.run(scenario())
    with pytest.raises(AssertionError, match="waiting for the file; last: None"):
        wait_until_sync(lambda: None, timeout=0.05, what="the file")
