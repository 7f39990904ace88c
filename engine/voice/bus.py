"""The voice bus protocol: per call, a log of commands and a log of events.

Both implementations (:mod:`engine.voice.memory_bus`, :mod:`engine.voice.redis_bus`)
behave like Redis Streams: appending returns an id; reading returns the
entries after a given id, waiting up to a timeout for the first one. A reader
keeps the id of the last entry it handled, so after a reconnect (or in a new
process, with the id saved) it resumes exactly there: nothing is lost and
nothing is seen twice. Ids are opaque strings; ``START`` reads from the beginning.

Small per-call documents (:meth:`VoiceBus.load_state` / :meth:`save_state`)
let each side remember where it was between nodes or across a restart; they
live and expire with the call's streams.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, Protocol, TypeVar

from engine.voice.messages import Command, Event

START = "0"
# Stream names, shared with every agent implementation (LiveKit agent, simulator).
COMMANDS_KEY = "voice:commands:{call_id}"
EVENTS_KEY = "voice:events:{call_id}"
STATE_KEY = "voice:state:{call_id}"

_T = TypeVar("_T")
# An entry whose message this version cannot decode is returned as None, so
# that readers still move past it.
Entry = tuple[str, _T | None]


class VoiceBus(Protocol):
    """One bus serves many calls; both sides of a call talk through it."""

    async def send_command(self, call_id: str, command: Command) -> str:
        """Append a command for the agent; returns its id."""
        ...

    async def publish_event(self, call_id: str, event: Event) -> str:
        """Append an event for the plugin side; returns its id."""
        ...

    async def read_commands(self, call_id: str, after: str, timeout: float) -> list[Entry[Command]]:
        """Commands after id ``after``, waiting up to ``timeout`` seconds (0: no wait)."""
        ...

    async def read_events(self, call_id: str, after: str, timeout: float) -> list[Entry[Event]]:
        """Events after id ``after``, waiting up to ``timeout`` seconds (0: no wait)."""
        ...

    async def last_command_id(self, call_id: str) -> str:
        """The id of the newest command (``START`` if none): where an agent that
        replaces another starts reading, since the plugin side sends again what
        was outstanding."""
        ...

    async def load_state(self, call_id: str, owner: str) -> dict[str, Any] | None:
        """The document ``owner`` saved for this call, if any."""
        ...

    async def save_state(self, call_id: str, owner: str, state: Mapping[str, Any]) -> None:
        """Save a JSON-able document for this call under ``owner``."""
        ...

    async def end_call(self, call_id: str) -> None:
        """The call is over: its streams and state may go after a short retention time."""
        ...

    async def close(self) -> None:
        """Release connections. Ids read so far stay valid for a new bus object."""
        ...


class StreamCursor(Generic[_T]):
    """Reads one stream entry by entry and remembers the last id handed out.

    ``position`` is the id of the last entry returned by :meth:`next`, never of
    an entry merely fetched into the buffer, so saving it and starting a new
    cursor there later skips nothing.
    """

    def __init__(self, read: Callable[[str, float], Awaitable[list[Entry[_T]]]], after: str = START) -> None:
        self._read = read
        self._fetched_up_to = after
        self.position = after
        self._buffer: deque[tuple[str, _T | None]] = deque()

    async def next(self, timeout: float) -> tuple[str, _T] | None:
        """The next entry, waiting up to ``timeout`` seconds; None if none came."""
        while True:
            while self._buffer:
                entry_id, message = self._buffer.popleft()
                self.position = entry_id
                if message is not None:
                    return entry_id, message
            batch = await self._read(self._fetched_up_to, max(timeout, 0.0))
            if not batch:
                return None
            self._fetched_up_to = batch[-1][0]
            self._buffer.extend(batch)
            timeout = 0.0  # the wait is used; undecodable entries must not extend it
