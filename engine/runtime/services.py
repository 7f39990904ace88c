"""The concrete services a worker lends to activity nodes (see service_types).

One :class:`RuntimeServices` lives as long as its worker: it owns one aiohttp
session (connection pooling across nodes and calls) and knows the configured
database connections and LLM endpoint.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Protocol

import aiohttp

from engine.language.node_contract import NodeResult
from engine.runtime.config import RuntimeConfig
from engine.runtime.database import open_database
from engine.runtime.messages import NodeTask
from engine.runtime.service_types import Database, LlmSettings


class FixedAnswers(Protocol):
    """Fixed results for some nodes, used instead of running their plugin.

    ``voxflow test`` and ``voxflow chat --answers`` give a worker such a table
    so that nodes calling outside services answer the same way every time
    without the service. A worker without one (production) never asks. The
    ``run_node`` activity calls :meth:`answer` with the node's config, its
    templates filled in: a result replaces the plugin's work; ``None`` runs
    the plugin; an exception is the node's failure, handled like the
    plugin's own (a VoxflowError is final, not retried).
    """

    def answer(self, task: NodeTask, config: Mapping[str, Any]) -> NodeResult | None: ...


class RuntimeServices:
    """HTTP, databases and the LLM endpoint for activity nodes.

    ``voice_bus`` is handed to voice nodes as ``services.voice_bus`` (see
    engine.voice.services); without one they fail with a plain reason.
    ``voice_clock`` (a scaled clock) lets conversation tests run voice
    timeouts faster than real time. ``fixed_answers``, when given, is asked
    before every activity node runs (see :class:`FixedAnswers`).
    """

    def __init__(
        self,
        config: RuntimeConfig | None = None,
        voice_bus: object | None = None,
        *,
        voice_clock: object | None = None,
        fixed_answers: FixedAnswers | None = None,
        recorder: object | None = None,
    ) -> None:
        self.config = config or RuntimeConfig()
        self.voice_bus = voice_bus
        self.voice_clock = voice_clock  # engine.voice.clock.Clock; None: real time
        self.fixed_answers = fixed_answers
        # A CallRecorder (engine.runtime.recording) for calls started with record on;
        # without one their records are not written (the calls run all the same).
        self.recorder = recorder
        self._session: aiohttp.ClientSession | None = None
        self._lock = asyncio.Lock()

    async def http_session(self) -> aiohttp.ClientSession:
        # Created lazily so it belongs to the event loop the worker runs on.
        async with self._lock:
            if self._session is None or self._session.closed:
                self._session = aiohttp.ClientSession(
                    headers={"User-Agent": "voxflow"},
                    timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
                )
            return self._session

    def database(self, connection: str) -> Database:
        return open_database(self.config.database_url(connection))

    def llm(self) -> LlmSettings:
        return self.config.llm

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
