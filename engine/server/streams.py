"""Live events over Server-Sent Events and WebSocket, for all calls, one call or one flow.

SSE: ``GET /api/events``, ``/api/calls/{call_id}/events``, ``/api/flows/{flow_id}/events``;
each event is ``id: <n>``, ``event: <type>``, ``data: <JSON>``; a comment line
every 15 s keeps proxies from closing the stream; ``Last-Event-ID`` (which
browsers send when they reconnect) replays what this server still holds.

WebSocket: ``GET /api/ws`` with optional ``call_id`` / ``flow_id`` query
parameters; each message is the event's JSON with its ``id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from aiohttp import WSMsgType, web

from engine.server.context import context_of

KEEPALIVE_SECONDS = 15.0
CLOSING_KEY: web.AppKey[asyncio.Event] = web.AppKey("streams_closing", asyncio.Event)


def _after(request: web.Request) -> int | None:
    text = request.headers.get("Last-Event-ID") or request.query.get("after")
    try:
        return int(text) if text else None
    except ValueError:
        return None


async def _sse(request: web.Request, call_id: str | None, flow_id: str | None) -> web.StreamResponse:
    ctx = context_of(request)
    closing = request.app[CLOSING_KEY]
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # nginx: do not hold events back
        }
    )
    await response.prepare(request)
    async with ctx.hub.subscribe(call_id=call_id, flow_id=flow_id, after=_after(request)) as sub:
        try:
            await response.write(b"retry: 2000\n: connected\n\n")
            while not closing.is_set():
                try:
                    number, event = await asyncio.wait_for(_next(sub.queue, closing), KEEPALIVE_SECONDS)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                if number < 0:
                    break
                await response.write(
                    f"id: {number}\nevent: {event.type}\ndata: {event.to_json()}\n\n".encode()
                )
        except (ConnectionResetError, ConnectionError):
            pass  # the client went away
    return response


async def _next(queue: asyncio.Queue, closing: asyncio.Event):  # type: ignore[no-untyped-def]
    """The next event, or (-1, None) when the server is shutting down."""
    getter = asyncio.ensure_future(queue.get())
    stopper = asyncio.ensure_future(closing.wait())
    try:
        await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if not getter.done():
            getter.cancel()
    if getter.done() and not getter.cancelled():
        return getter.result()
    return -1, None


async def all_events(request: web.Request) -> web.StreamResponse:
    return await _sse(request, None, None)


async def call_events(request: web.Request) -> web.StreamResponse:
    return await _sse(request, request.match_info["call_id"], None)


async def flow_events(request: web.Request) -> web.StreamResponse:
    return await _sse(request, None, request.match_info["flow_id"])


async def websocket(request: web.Request) -> web.WebSocketResponse:
    ctx = context_of(request)
    closing = request.app[CLOSING_KEY]
    ws = web.WebSocketResponse(heartbeat=KEEPALIVE_SECONDS)
    await ws.prepare(request)
    call_id = request.query.get("call_id") or None
    flow_id = request.query.get("flow_id") or None
    async with ctx.hub.subscribe(call_id=call_id, flow_id=flow_id, after=_after(request)) as sub:
        reader = asyncio.ensure_future(_until_closed(ws))
        try:
            while not reader.done() and not closing.is_set():
                getter = asyncio.ensure_future(_next(sub.queue, closing))
                await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    break
                number, event = getter.result()
                if number < 0:
                    break
                await ws.send_str(json.dumps({"id": number, **event.to_dict()}, default=str))
        except (ConnectionResetError, ConnectionError):
            pass
        finally:
            reader.cancel()
            with contextlib.suppress(Exception):
                await ws.close()
    return ws


async def _until_closed(ws: web.WebSocketResponse) -> None:
    async for message in ws:
        if message.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            break


async def _on_shutdown(app: web.Application) -> None:
    app[CLOSING_KEY].set()


def add_routes(app: web.Application) -> None:
    app[CLOSING_KEY] = asyncio.Event()
    app.on_shutdown.append(_on_shutdown)
    app.router.add_get("/api/events", all_events)
    app.router.add_get("/api/calls/{call_id}/events", call_events)
    app.router.add_get("/api/flows/{flow_id}/events", flow_events)
    app.router.add_get("/api/ws", websocket)
