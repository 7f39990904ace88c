"""The aiohttp application: webhooks, API, live events, metrics and the monitor page.

:func:`create_app` takes a ready :class:`~engine.server.context.ServerContext`
(built by ``voxflow serve``, ``voxflow dev`` or a test) and wires the routes.
Authentication: /api (and the event streams) take ``VOXFLOW_API_TOKEN`` as a
bearer token, a ``token`` query parameter (EventSource and WebSocket cannot
send headers) or the ``voxflow_token`` cookie; /api/internal takes
``VOXFLOW_INTERNAL_TOKEN``; the webhooks are authenticated by their Telnyx
signature or LiveKit's signed token; /metrics, /healthz, the OpenAPI document
and the monitor page's files are open (the page holds no data: it asks the API).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from engine.server import (
    api,
    caller_socket,
    livekit_webhooks,
    stats_api,
    streams,
    twilio_webhooks,
    webhooks,
)
from engine.server.context import CONTEXT_KEY, ServerContext, context_of
from engine.server.metrics import PROMETHEUS_CONTENT_TYPE
from engine.server.tracing import tracing_middleware

log = logging.getLogger(__name__)
MONITOR_DIR = Path(__file__).parent / "monitor"
PUBLIC_API = frozenset({"/api/openapi.json"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _token_of(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.query.get("token") or request.cookies.get("voxflow_token") or ""


def _same(given: str, expected: str) -> bool:
    # A header or cookie may carry any byte (aiohttp keeps undecodable ones as surrogates).
    return hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape")
    )


# The monitor page runs only its own script (monitor.js, and the browser caller's audio
# worklet, which may be a blob: URL), talks only to this server (fetch, EventSource and
# the same-origin WebSocket), plays audio it made (blob:, data:), and shows its own
# images. Inline styles: the server's SVG diagrams carry a <style> element. No page
# may frame it (clickjacking).
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",  # the browser caller's AudioWorklet is a file of /monitor/ too
        "worker-src 'self' blob:",
        "media-src 'self' blob: data:",
        "connect-src 'self'",
        "img-src 'self' data:",
        "style-src 'self' 'unsafe-inline'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def origin_allowed(request: web.Request) -> bool:
    """May this browser page use the server's WebSockets? Its own origin (the monitor page
    as served here, whatever the scheme a proxy adds), VOXFLOW_ALLOWED_ORIGINS, or no
    Origin at all (a program, which must then bring the token itself)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    origin = origin.strip().rstrip("/")
    scheme, sep, host = origin.partition("://")
    if sep and scheme.lower() in ("http", "https") and host.lower() == request.host.lower():
        return True
    return origin in context_of(request).settings.allowed_origins


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if request.headers.get("Upgrade", "").lower() == "websocket" and not origin_allowed(request):
        # A browser sends the token cookie with a WebSocket from any page: only pages of
        # this server may open one (WebSockets have no CORS to stop the others).
        return webhooks.json_error(
            403,
            "WebSockets are open to this server's own pages "
            "only (or the origins in VOXFLOW_ALLOWED_ORIGINS).",
        )
    if not path.startswith("/api/") or path in PUBLIC_API:
        return await handler(request)
    settings = context_of(request).settings
    if path.startswith("/api/internal/"):
        expected = settings.internal_token
        if not expected:
            return webhooks.json_error(
                401, "the internal API is closed: set VOXFLOW_INTERNAL_TOKEN on the server and the agent."
            )
        if not _same(_token_of(request), expected):
            return webhooks.json_error(401, "send VOXFLOW_INTERNAL_TOKEN as a bearer token.")
        return await handler(request)
    expected = settings.api_token
    if expected and not _same(_token_of(request), expected):
        return webhooks.json_error(
            401,
            "this needs the API token (VOXFLOW_API_TOKEN): send it as 'Authorization: "
            "Bearer <token>', or as ?token=<token> for event streams.",
        )
    return await handler(request)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """No traceback reaches a client: unexpected failures are logged and answered in words."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        context_of(request).metrics.errors.labels("server").inc()
        return webhooks.json_error(500, "voxflow hit an unexpected problem; it is in the server's log.")


async def healthz(request: web.Request) -> web.Response:
    ctx = context_of(request)
    return web.json_response(
        {"status": "ok", "flows": len(ctx.library.flows), "triggers": len(ctx.library.triggers)}
    )


async def metrics(request: web.Request) -> web.Response:
    ctx = context_of(request)
    try:
        ctx.metrics.set_live_counts(await ctx.records.count_live())
    except Exception as error:  # the records database is down: still serve the rest
        log.warning("active calls not counted: %s", error)
        ctx.metrics.errors.labels("records_unavailable").inc()
    response = web.Response(body=ctx.metrics.render())
    response.headers["Content-Type"] = PROMETHEUS_CONTENT_TYPE
    return response


async def to_monitor(request: web.Request) -> web.Response:
    raise web.HTTPFound("/monitor/")


async def monitor_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(MONITOR_DIR / "index.html", headers={"Cache-Control": "no-cache"})


def create_app(ctx: ServerContext) -> web.Application:
    app = web.Application(
        middlewares=[tracing_middleware, error_middleware, auth_middleware], client_max_size=webhooks.MAX_BODY
    )
    app[CONTEXT_KEY] = ctx
    app.on_response_prepare.append(_security_headers)
    app.router.add_post("/webhooks/telnyx", webhooks.telnyx_events)
    app.router.add_get("/webhooks/telnyx/texml", webhooks.telnyx_texml)
    app.router.add_post("/webhooks/telnyx/texml", webhooks.telnyx_texml)
    app.router.add_post("/webhooks/livekit", livekit_webhooks.livekit_events)
    twilio_webhooks.add_routes(app)
    api.add_routes(app)
    stats_api.add_routes(app)
    streams.add_routes(app)
    caller_socket.add_routes(app)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/", to_monitor)
    app.router.add_get("/monitor", to_monitor)
    app.router.add_get("/monitor/", monitor_page)
    app.router.add_static("/monitor/", MONITOR_DIR, append_version=False)

    async def bind_hub(app: web.Application) -> None:
        ctx.hub.bind()

    app.on_startup.append(bind_hub)
    return app
