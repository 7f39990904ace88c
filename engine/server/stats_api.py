"""From real calls back to the flow, on the API: analytics, and a call made a test.

``/api/stats`` (every flow) and ``/api/flows/{flow}/stats``: engine.server.analytics's
figures; the monitor page draws a flow's over its diagram (each node's % reached
and % ended there, edges by traffic). ``POST /api/calls/{call}/test``: the monitor's
"Make a test" button, ``voxflow test --from-call`` on the server (engine.simulate.from_call).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from engine.core.errors import VoxflowError
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
            return _error(404, f"no flow named '{flow_id}' is served, so it has no current version.")
        versions = [graph.version if v == "current" else v for v in versions]
    try:
        body: dict[str, Any] = await StatsReader(ctx.records).compare(flow_id, versions, since)
    except UnknownVersion as error:
        return _error(404, str(error))
    body["current_version"] = graph.version if graph is not None else None
    return web.json_response(body)


async def call_as_test(request: web.Request) -> web.Response:
    from engine.simulate.from_call import export_call

    ctx = context_of(request)
    mask = request.query.get("mask") in ("1", "true", "yes")
    try:
        exported = await export_call(ctx.records, request.match_info["call_id"], ctx.library.flows, mask=mask)
    except VoxflowError as error:
        return _error(404 if "no call" in error.message else 409, error.message)
    try:
        shown = str(exported.path.resolve().relative_to(Path.cwd()))
    except ValueError:
        shown = str(exported.path)
    return web.json_response(
        {
            "file": shown,
            "text": exported.text,
            "flow_id": exported.flow_id,
            "flow_changed": exported.flow_changed,
            "run": f"voxflow test {shown}",
        }
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/stats", all_flows)
    app.router.add_get("/api/flows/{flow_id}/stats", one_flow)
    app.router.add_post("/api/calls/{call_id}/test", call_as_test)


def _param(name: str, where: str, description: str, repeat: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if repeat:
        schema = {"type": "array", "items": schema}
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "description": description,
        "schema": schema,
        **({"explode": True} if repeat else {}),
    }


_SINCE = _param("since", "query", "Only calls started since: 7d, 24h, 30m ago, or a date (2026-05-01).")
_ERROR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
OPENAPI_PATHS: dict[str, Any] = {
    "/api/stats": {
        "get": {
            "summary": "Every flow's calls, endings and durations (call analytics)",
            "security": [{"bearerToken": []}, {"tokenQuery": []}],
            "parameters": [_SINCE],
            "responses": {
                "200": {
                    "description": "Per flow: calls, outcome counts and rates, p50/p95 duration.",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "400": {"description": "Malformed request", **_ERROR},
                "401": {"description": "Missing or wrong credentials or signature", **_ERROR},
            },
        }
    },
    "/api/flows/{flow_id}/stats": {
        "get": {
            "summary": "One flow's analytics per version: endings, durations, node drop-off, "
            "no-input and no-match rates, confidence, edge traffic",
            "security": [{"bearerToken": []}, {"tokenQuery": []}],
            "parameters": [
                _param("flow_id", "path", "The flow."),
                _SINCE,
                _param(
                    "version",
                    "query",
                    "A version (or its first characters, or 'current'); "
                    "give two to compare. Default: the two most recently called.",
                    repeat=True,
                ),
            ],
            "responses": {
                "200": {
                    "description": "The flow's figures, one entry per version.",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "400": {"description": "Malformed request", **_ERROR},
                "401": {"description": "Missing or wrong credentials or signature", **_ERROR},
                "404": {"description": "Not found", **_ERROR},
            },
        }
    },
    "/api/calls/{call_id}/test": {
        "post": {
            "summary": "Write a conversation test that replays this call, beside its flow",
            "description": "The caller's turns, the outside services' recorded answers, and the "
            "path taken as expectations (voxflow test --from-call).",
            "security": [{"bearerToken": []}, {"tokenQuery": []}],
            "parameters": [
                _param("call_id", "path", "The call."),
                _param("mask", "query", "1: mask phone numbers, long numbers and free speech."),
            ],
            "responses": {
                "200": {
                    "description": "The test file written and its text.",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "401": {"description": "Missing or wrong credentials or signature", **_ERROR},
                "404": {"description": "Not found", **_ERROR},
                "409": {"description": "The call is still going, or its flow is not served", **_ERROR},
            },
        }
    },
}
