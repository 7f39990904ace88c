"""The voice bus in one process: lists in memory, waiters woken on append.

Used by ``voxflow dev`` without Redis, ``voxflow chat`` and tests. Messages
still go through their JSON encoding, so anything that works here works on
Redis too. Readers may sit on different event loops or threads (a worker and
a simulator in one process): waiters are woken on their own loop.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.voice.bus import START, Entry
from engine.voice.messages import Command, Event, command_from_json, event_from_json, to_json

# How long an ended call's data stays readable (a late reader, a monitor).
DEFAULT_RETENTION = 300.0


@dataclass
class _Stream:
    entries: list[str] = field(default_factory=list)  # JSON texts; id = index + 1
    waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = field(default_factory=list)


@dataclass
class _Call:
    commands: _Stream = field(default_factory=_Stream)
    events: _Stream = field(default_factory=_Stream)
    state: dict[str, str] = field(default_factory=dict)
    ended_at: float | None = None


class MemoryVoiceBus:
    """A :class:`~engine.voice.bus.VoiceBus` for a single process."""

    def __init__(self, retention: float = DEFAULT_RETENTION) -> None:
        self._calls: dict[str, _Call] = {}
        self._lock = threading.Lock()
        self._retention = retention

    # ---- writing --------------------------------------------------------

    async def send_command(self, call_id: str, command: Command) -> str:
        return self._append(call_id, "commands", to_json(command))

    async def publish_event(self, call_id: str, event: Event) -> str:
        return self._append(call_id, "events", to_json(event))

    def _append(self, call_id: str, which: str, text: str) -> str:
        with self._lock:
            stream: _Stream = getattr(self._call(call_id), which)
            stream.entries.append(text)
            entry_id = _format_id(len(stream.entries))
            waiters, stream.waiters = stream.waiters, []
        for loop, future in waiters:
            loop.call_soon_threadsafe(_wake, future)
        return entry_id

    # ---- reading --------------------------------------------------------

    async def read_commands(self, call_id: str, after: str, timeout: float) -> list[Entry[Command]]:
        texts = await self._read(call_id, "commands", after, timeout)
        return [(entry_id, command_from_json(text)) for entry_id, text in texts]

    async def read_events(self, call_id: str, after: str, timeout: float) -> list[Entry[Event]]:
        texts = await self._read(call_id, "events", after, timeout)
        return [(entry_id, event_from_json(text)) for entry_id, text in texts]

    async def _read(self, call_id: str, which: str, after: str, timeout: float) -> list[tuple[str, str]]:
        start = _parse_id(after)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            with self._lock:
                stream: _Stream = getattr(self._call(call_id), which)
                if len(stream.entries) > start:
                    return [
                        (_format_id(index + 1), text)
                        for index, text in enumerate(stream.entries[start:], start)
                    ]
                left = deadline - loop.time()
                if left <= 0:
                    return []
                future: asyncio.Future[None] = loop.create_future()
                stream.waiters.append((loop, future))
            try:
                await asyncio.wait_for(future, left)
            except TimeoutError:
                return []
            finally:
                with self._lock:
                    stream.waiters = [w for w in stream.waiters if w[1] is not future]

    async def last_command_id(self, call_id: str) -> str:
        with self._lock:
            count = len(self._call(call_id).commands.entries)
        return _format_id(count) if count else START

    # ---- state and lifetime --------------------------------------------

    async def load_state(self, call_id: str, owner: str) -> dict[str, Any] | None:
        with self._lock:
            text = self._call(call_id).state.get(owner)
        return None if text is None else dict(json.loads(text))

    async def save_state(self, call_id: str, owner: str, state: Mapping[str, Any]) -> None:
        text = json.dumps(dict(state))  # a copy: later changes by the caller do not leak in
        with self._lock:
            self._call(call_id).state[owner] = text

    async def end_call(self, call_id: str) -> None:
        with self._lock:
            call = self._calls.get(call_id)
            if call is not None and call.ended_at is None:
                call.ended_at = time.monotonic()

    async def close(self) -> None:
        return None

    def call_ids(self) -> list[str]:
        """Calls with data on the bus (for tests and the simulator)."""
        with self._lock:
            return list(self._calls)

    def _call(self, call_id: str) -> _Call:
        """The call's data, created on first use. Called with the lock held."""
        call = self._calls.get(call_id)
        if call is None:
            self._forget_ended_calls()
            call = self._calls[call_id] = _Call()
        return call

    def _forget_ended_calls(self) -> None:
        # Lazily, when a new call appears: no timer thread, and memory stays
        # bounded by the calls of the last few minutes.
        now = time.monotonic()
        for call_id in [
            cid
            for cid, call in self._calls.items()
            if call.ended_at is not None and now - call.ended_at > self._retention
        ]:
            del self._calls[call_id]


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _format_id(number: int) -> str:
    return f"{number}-0"


def _parse_id(entry_id: str) -> int:
    if entry_id in (START, "", "0-0"):
        return 0
    try:
        return int(entry_id.split("-", 1)[0])
    except ValueError:
        raise ValueError(f"'{entry_id}' is not an id of the in-memory voice bus") from None
