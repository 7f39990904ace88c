"""Everything a server's request handlers share, in one object kept on the aiohttp app."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from temporalio.client import Client

from engine.server.caller_lookup import CallerLookup
from engine.server.desk import CallDesk
from engine.server.events import EventHub, EventPublisher
from engine.server.flow_library import FlowLibrary, ReloadReport
from engine.server.metrics import Metrics
from engine.server.records import RecordsStore
from engine.server.settings import ServerSettings
from engine.server.telnyx_api import TelnyxApi


@dataclass
class ServerContext:
    settings: ServerSettings
    library: FlowLibrary
    records: RecordsStore
    hub: EventHub
    publisher: EventPublisher
    temporal: Client | None = None
    voice_bus: Any = None
    metrics: Metrics = field(default_factory=Metrics)
    clock: Callable[[], float] = time.time
    last_reload: ReloadReport | None = None
    # voxflow dev's voice agents (engine.agent.dev_agents.DevAgents), which take
    # browser callers; None where agents run elsewhere (voxflow serve).
    agents: Any = None
    desk: CallDesk = field(init=False)

    def __post_init__(self) -> None:
        telnyx, lookup = None, None
        if self.settings.telnyx_api_key:
            telnyx = TelnyxApi(self.settings.telnyx_api_key, self.settings.telnyx_api_url)
            if self.settings.number_lookup:
                lookup = CallerLookup(telnyx)
        self.desk = CallDesk(
            self.settings,
            self.library,
            self.records,
            self.publisher,
            self.temporal_client,
            self.voice_bus,
            telnyx=telnyx,
            lookup=lookup,
        )
        self.hub.listen(self.metrics.observe_event)

    async def close(self) -> None:
        """Stop what the desk runs beside requests (Call Control commands, lookups)."""
        await self.desk.close()
        if self.desk.lookup is not None:
            await self.desk.lookup.close()
        if self.desk.telnyx is not None:
            await self.desk.telnyx.close()

    def temporal_client(self) -> Client:
        if self.temporal is None:
            raise RuntimeError("the server has no Temporal client")
        return self.temporal


CONTEXT_KEY: web.AppKey[ServerContext] = web.AppKey("voxflow", ServerContext)


def context_of(request: web.Request) -> ServerContext:
    return request.app[CONTEXT_KEY]
