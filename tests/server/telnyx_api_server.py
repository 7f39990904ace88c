"""A local server speaking Telnyx's REST wire format: Call Control commands and Number Lookup.

voxflow talks to it through Telnyx's own SDK (``telnyx``), pointed here by
``TELNYX_BASE_URL``, exactly as it talks to api.telnyx.com/v2:

- ``POST /v2/calls/{call_control_id}/actions/{answer,transfer,reject,speak,hangup}``
  with a JSON body; ``{"data": {"result": "ok"}}`` back. A ``command_id`` seen
  before for the same call is acknowledged and not done again, as Telnyx does.
- ``GET /v2/number_lookup/{phone_number}?type=carrier``: ``{"data": {...}}`` shaped
  like the documented example (carrier, portability with city and state).
- ``Authorization: Bearer <key>`` is checked; a wrong key gets Telnyx's 401 body.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

API_KEY = "KEY0123456789TEST"


@dataclass
class Command:
    call_control_id: str
    action: str
    body: dict[str, Any]


@dataclass
class TelnyxApiState:
    commands: list[Command] = field(default_factory=list)
    lookups: list[tuple[str, str]] = field(default_factory=list)  # (number, type)
    numbers: dict[str, dict[str, Any]] = field(default_factory=dict)  # number -> facts
    lookup_delay: float = 0.0
    lookup_gate: asyncio.Event | None = None  # lookups wait for it when set
    failing_actions: set[str] = field(default_factory=set)
    seen_command_ids: set[tuple[str, str]] = field(default_factory=set)

    def actions(self, call_control_id: str) -> list[str]:
        return [c.action for c in self.commands if c.call_control_id == call_control_id]


def _errors(status: int, code: str, title: str, detail: str) -> web.Response:
    return web.json_response({"errors": [{"code": code, "title": title, "detail": detail}]}, status=status)


def make_app(state: TelnyxApiState) -> web.Application:
    @web.middleware
    async def auth(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {API_KEY}":
            return _errors(401, "10009", "Authentication failed", "The API key is not valid.")
        return await handler(request)

    async def action(request: web.Request) -> web.Response:
        call_control_id = request.match_info["call_control_id"]
        name = request.match_info["action"]
        body = await request.json() if request.can_read_body else {}
        if name in state.failing_actions:
            return _errors(
                422,
                "90018",
                "Call has already ended",
                "This call is no longer active and can't receive commands.",
            )
        command_id = body.get("command_id")
        if command_id and (call_control_id, command_id) in state.seen_command_ids:
            return web.json_response({"data": {"result": "ok"}})
        if command_id:
            state.seen_command_ids.add((call_control_id, command_id))
        state.commands.append(Command(call_control_id, name, body))
        data: dict[str, Any] = {"result": "ok"}
        if name == "answer" and body.get("record"):
            data["recording_id"] = "d7e9c1d4-8b2a-4b8c-9b2f-1f2d3e4f5a6b"
        return web.json_response({"data": data})

    async def number_lookup(request: web.Request) -> web.Response:
        number = request.match_info["phone_number"]
        state.lookups.append((number, request.query.get("type", "")))
        if state.lookup_gate is not None:
            await state.lookup_gate.wait()
        if state.lookup_delay:
            await asyncio.sleep(state.lookup_delay)
        facts = state.numbers.get(number)
        if facts is None:
            return _errors(404, "10005", "Resource not found", "The requested number could not be found.")
        return web.json_response(
            {
                "data": {
                    "record_type": "number_lookup",
                    "phone_number": number,
                    "country_code": "US",
                    "national_format": facts.get("national_format", ""),
                    "fraud": None,
                    "caller_name": None,
                    "carrier": {
                        "error_code": None,
                        "mobile_country_code": None,
                        "mobile_network_code": None,
                        "name": facts.get("carrier"),
                        "normalized_carrier": facts.get("carrier"),
                        "type": "mobile",
                    },
                    "portability": {
                        "altspid": "",
                        "altspid_carrier_name": "",
                        "altspid_carrier_type": "",
                        "city": facts.get("city"),
                        "line_type": "mobile",
                        "lrn": "",
                        "ocn": "",
                        "ported_date": "",
                        "ported_status": "N",
                        "spid": "",
                        "spid_carrier_name": facts.get("carrier"),
                        "spid_carrier_type": "",
                        "state": facts.get("state"),
                    },
                }
            }
        )

    app = web.Application(middlewares=[auth])
    app.router.add_post("/v2/calls/{call_control_id}/actions/{action}", action)
    app.router.add_get("/v2/number_lookup/{phone_number}", number_lookup)
    return app


class TelnyxApiServer:
    """``async with TelnyxApiServer() as api:`` then ``api.url`` is the base URL (…/v2)."""

    def __init__(self) -> None:
        self.state = TelnyxApiState()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> TelnyxApiServer:
        self._runner = web.AppRunner(make_app(self.state))
        await self._runner.setup()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}/v2"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
