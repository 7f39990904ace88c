"""Helpers for the simulator tests: an engine on the session's Temporal server, a chat view."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from engine.language.compile import FlowGraph
from engine.language.project import compile_paths
from engine.runtime.temporal_server import TemporalSettings
from engine.simulate.chat import ChatSession
from engine.simulate.clock import PausableClock
from engine.simulate.session import CallSetup, EngineOptions, SimulatorEngine

FLOWS = Path(__file__).resolve().parents[2] / "flows"
# Chat time runs 20 times as fast as real time while the caller does something,
# so "/silence" (a 5 s no-input) passes in a quarter of a second.
CHAT_RATE = 20.0
_T = TypeVar("_T")


def example_flows() -> dict[str, FlowGraph]:
    return compile_paths([FLOWS]).flows


@dataclass
class RecordingView:
    """A ChatView that keeps what it was shown, and lets a test wait for a line."""

    shown: list[tuple[str, str]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def show(self, kind: str, text: str) -> None:
        self.shown.append((kind, text))
        self.changed.set()

    def lines(self, kind: str | None = None) -> list[str]:
        return [text for k, text in self.shown if kind is None or k == kind]

    async def wait_for(self, kind: str, words: str, after: int = 0, timeout: float = 15) -> int:
        """Wait until a ``kind`` line containing ``words`` is shown; returns its position."""

        async def look() -> int:
            while True:
                for index, (k, text) in enumerate(self.shown[after:], start=after):
                    if k == kind and words in text:
                        return index
                self.changed.clear()
                await self.changed.wait()

        return await asyncio.wait_for(look(), timeout)


async def chat(
    settings: TemporalSettings,
    graph: FlowGraph,
    setup: CallSetup,
    script: Callable[[ChatSession, RecordingView], Awaitable[None]],
) -> tuple[RecordingView, ChatSession]:
    """Run a chat on its own engine (the session's Temporal server); ``script`` types into it."""
    clock = PausableClock(rate=CHAT_RATE)
    view = RecordingView()
    async with SimulatorEngine(EngineOptions(temporal=settings, clock=clock)) as engine:
        session = ChatSession(engine, graph, setup, view, clock)
        running = asyncio.ensure_future(session.run())
        try:
            await script(session, view)
            await asyncio.wait_for(asyncio.shield(running), 30)
        finally:
            if not running.done():
                running.cancel()
    return view, session
