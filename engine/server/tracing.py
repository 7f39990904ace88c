"""The server's part of a call's trace: a span per request (see engine.core.telemetry).

A TeXML webhook names its call (Telnyx's CallSid gives the call id), so its span
carries ``voxflow.call_id`` and puts it in the baggage before the call's workflow
is started under it. Event streams, the monitor's files and /metrics are not traced, nor
the browser caller's socket, which lives across calls: each of its calls opens its own span
(engine.server.caller_socket).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from engine.core import telemetry

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
UNTRACED = ("/monitor", "/metrics", "/healthz", "/api/events", "/api/ws", "/api/caller")


@web.middleware
async def tracing_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not telemetry.enabled() or request.path.startswith(UNTRACED):
        return await handler(request)
    call_id = None
    if request.path.startswith("/webhooks/telnyx/texml"):
        from engine.server.telnyx import call_id_for

        form = await request.post() if request.method == "POST" else request.query
        sid = str(form.get("CallSid") or "")
        call_id = call_id_for(sid) if sid else None
    route = request.match_info.route.resource
    name = f"{request.method} {route.canonical if route is not None else request.path}"
    with telemetry.span(
        name, {"http.request.method": request.method, "url.path": request.path}, call_id=call_id
    ) as span:
        response = await handler(request)
        span.set_attribute("http.response.status_code", response.status)
        return response
