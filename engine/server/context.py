"""Everything a server's request handlers share, in one object kept on the aiohttp app."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from temporalio.client import Client

from engine.flow_library import FlowLibrary, ReloadReport
from engine.server.desk import CallDesk
from engine.server.events import EventHub, EventPublisher
from engine.server.metrics import Metrics
from engine.server.records import RecordsStore
from engine.server.settings import ServerSettings


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
        self.desk = CallDesk(self.settings, self.library, self.records, self.publisher,
                             self.temporal_client, self.voice_bus)
        self.hub.listen(self.metrics.observe_event)

    def temporal_client(self) -> Client:
        if self.temporal is None:
            raise RuntimeError("the server has no Temporal client")
        return self.temporal


CONTEXT_KEY: web.AppKey[ServerContext] = web.AppKey("voxflow", ServerContext)


def context_of(request: web.Request) -> ServerContext:
    return request.app[CONTEXT_KEY]
