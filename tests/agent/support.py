"""Watching a call's voice bus from a test, on the harness timeline."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from engine.agent.timeline import Timeline
from engine.voice.bus import START, VoiceBus
from engine.voice.messages import Command, Event, Speak

_T = TypeVar("_T")


@dataclass(frozen=True)
class Seen:
    """A message on the bus and when the test saw it (timeline seconds)."""

    at: float
    message: Any


class BusLog:
    """Both streams of one call, read as they grow (use with ``async with``)."""

    def __init__(self, bus: VoiceBus, call_id: str, timeline: Timeline) -> None:
        self.bus = bus
        self.call_id = call_id
        self.timeline = timeline
        self.commands: list[Seen] = []
        self.events: list[Seen] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._changed = asyncio.Event()

    async def __aenter__(self) -> BusLog:
        self._tasks = [
            asyncio.ensure_future(self._follow(self.bus.read_commands, self.commands)),
            asyncio.ensure_future(self._follow(self.bus.read_events, self.events)),
        ]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _follow(self, read: Callable[..., Any], into: list[Seen]) -> None:
        after = START
        while True:
            for entry_id, message in await read(self.call_id, after, 0.2):
                after = entry_id
                if message is not None:
                    into.append(Seen(self.timeline.now(), message))
                    self._changed.set()

    async def wait_for(
        self,
        kind: type[_T],
        where: Callable[[_T], bool] = lambda _m: True,
        *,
        after: float = -1.0,
        timeout: float = 20.0,
    ) -> Seen:
        """The first command or event of ``kind`` matching ``where``, seen after ``after``."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for seen in [*self.commands, *self.events]:
                if isinstance(seen.message, kind) and seen.at > after and where(seen.message):
                    return seen
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(
                    f"no {kind.__name__} on the bus within {timeout:g} s; commands: "
                    f"{[s.message for s in self.commands]}; events: {[s.message for s in self.events]}"
                )
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.5))

    async def speak(self, starts_with: str, *, after: float = -1.0, timeout: float = 30.0) -> Speak:
        seen = await self.wait_for(
            Speak, lambda s: s.text.startswith(starts_with), after=after, timeout=timeout
        )
        message: Speak = seen.message
        return message

    def of(self, kind: type[_T], request_id: str | None = None) -> list[_T]:
        found = [s.message for s in [*self.commands, *self.events] if isinstance(s.message, kind)]
        if request_id is not None:
            found = [m for m in found if getattr(m, "request_id", None) == request_id]
        return found

    def event_names(self) -> list[str]:
        return [type(s.message).__name__ for s in self.events]

    def spoken(self) -> list[str]:
        """The texts the flow asked the agent to say, in order."""
        return [s.message.text for s in self.commands if isinstance(s.message, Speak)]

    def index(self, message: Command | Event) -> int:
        return next(i for i, s in enumerate(self.events) if s.message == message)
