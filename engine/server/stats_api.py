"""Call analytics on the API: ``/api/stats`` (every flow) and ``/api/flows/{flow}/stats``.

The figures are engine.server.analytics's; the monitor page draws a flow's over
its diagram (each node's % reached and % ended there, edges by traffic).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from engine.server.analytics import StatsReader, UnknownVersion, parse_since
from engine.server.context import context_of


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _since(request: web.Request) -> float | None:
    return parse_since(request.query.get("since"), context_of(request).clock())


async def all_flows(request: web.Request) -> web.Response:
    try:
        since = _since(request)
    except ValueError as error:
        return _error(400, str(error))
    flows = await StatsReader(context_of(request).records).flows(since)
    return web.json_response({"since": since, "flows": flows})


async def one_flow(request: web.Request) -> web.Response:
    ctx = context_of(request)
    flow_id = request.match_info["flow_id"]
    try:
        since = _since(request)
    except ValueError as error:
        return _error(400, str(error))
    versions = request.query.getall("version", [])
    graph = ctx.library.flow(flow_id)
    if "current" in versions:
        if graph is None:
            return _error(404, f"no flow named '{flow_id}' is served, so it has no current "
                          "version.")
        versions = [graph.version if v == "current" else v for v in versions]
    try:
        body: dict[str, Any] = await StatsReader(ctx.records).compare(flow_id, versions, since)
    except UnknownVersion as error:
        return _error(404, str(error))
    body["current_version"] = graph.version if graph is not None else None
    return web.json_response(body)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/stats", all_flows)
    app.router.add_get("/api/flows/{flow_id}/stats", one_flow)


def _param(name: str, where: str, description: str, repeat: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if repeat:
        schema = {"type": "array", "items": schema}
    return {"name": name, "in": where, "required": where == "path", "description": description,
            "schema": schema, **({"explode": True} if repeat else {})}


_SINCE = _param("since", "query", "Only calls started since: 7d, 24h, 30m ago, or a date "
                "(2026-05-01).")
_ERROR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
OPENAPI_PATHS: dict[str, Any] = {
    "/api/stats": {"get": {
        "summary": "Every flow's calls, endings and durations (call analytics)",
        "security": [{"bearerToken": []}, {"tokenQuery": []}],
        "parameters": [_SINCE],
        "responses": {
            "200": {"description": "Per flow: calls, outcome counts and rates, p50/p95 "
                    "duration.", "content": {"application/json": {"schema": {"type": "object"}}}},
            "400": {"description": "Malformed request", **_ERROR},
            "401": {"description": "Missing or wrong credentials or signature", **_ERROR}}}},
    "/api/flows/{flow_id}/stats": {"get": {
        "summary": "One flow's analytics per version: endings, durations, node drop-off, "
                   "no-input and no-match rates, confidence, edge traffic",
        "security": [{"bearerToken": []}, {"tokenQuery": []}],
        "parameters": [
            _param("flow_id", "path", "The flow."), _SINCE,
            _param("version", "query", "A version (or its first characters, or 'current'); "
                   "give two to compare. Default: the two most recently called.", repeat=True),
        ],
        "responses": {
            "200": {"description": "The flow's figures, one entry per version.",
                    "content": {"application/json": {"schema": {"type": "object"}}}},
            "400": {"description": "Malformed request", **_ERROR},
            "401": {"description": "Missing or wrong credentials or signature", **_ERROR},
            "404": {"description": "Not found", **_ERROR}}}},
}
