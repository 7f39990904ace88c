"""The concrete services a worker lends to activity nodes (see service_types).

One :class:`RuntimeServices` lives as long as its worker: it owns one aiohttp
session (connection pooling across nodes and calls) and knows the configured
database connections and LLM endpoint.
"""

from __future__ import annotations

import asyncio

import aiohttp

from engine.runtime.config import RuntimeConfig
from engine.runtime.database import open_database
from engine.runtime.service_types import Database, LlmSettings


class RuntimeServices:
    """HTTP, databases and the LLM endpoint for activity nodes.

    ``voice_bus`` is handed to voice nodes as ``services.voice_bus`` (see
    engine.voice.services); without one they fail with a plain reason.
    """

    def __init__(self, config: RuntimeConfig | None = None, voice_bus: object | None = None) -> None:
        self.config = config or RuntimeConfig()
        self.voice_bus = voice_bus
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
