"""The JSON API under /api: flows, triggers, calls, reload problems, the agent's call context.

Every route here is described in the OpenAPI document (engine.server.openapi);
a test checks that the two agree.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from aiohttp import web

from engine.authoring.render import diagram_from_graph
from engine.authoring.render.mermaid import render_mermaid
from engine.language.compile import FlowGraph
from engine.language.triggers import Trigger
from engine.language.upcoming import graph_prompts
from engine.runtime.messages import workflow_id
from engine.server.context import ServerContext, context_of
from engine.server.diagram_svg import render_svg
from engine.server.openapi import openapi_document
from engine.server.records import ALL_STATUSES


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _flow_summary(ctx: ServerContext, graph: FlowGraph) -> dict[str, Any]:
    numbers = sorted(t.number for t in ctx.library.triggers.values() if t.flow == graph.flow_id)
    file = graph.source
    problems = ctx.library.problems.get(file, [])
    return {
        "flow_id": graph.flow_id,
        "version": graph.version,
        "short_version": graph.short_version,
        "description": graph.description,
        "file": _relative(file),
        "nodes": len(graph.nodes),
        "numbers": numbers,
        "errors": sum(1 for d in problems if d.is_error),
        "warnings": sum(1 for d in problems if not d.is_error),
    }


def _relative(file: str) -> str:
    try:
        return str(Path(file).resolve().relative_to(Path.cwd()))
    except ValueError:
        return file


async def list_flows(request: web.Request) -> web.Response:
    ctx = context_of(request)
    flows = [_flow_summary(ctx, g) for _, g in sorted(ctx.library.flows.items())]
    return web.json_response({"flows": flows})


def _graph(request: web.Request) -> FlowGraph:
    ctx = context_of(request)
    flow_id = request.match_info["flow_id"]
    graph = ctx.library.flow(flow_id)
    if graph is None:
        raise web.HTTPNotFound(
            text=_json({"error": f"no flow named '{flow_id}' is served."}), content_type="application/json"
        )
    return graph


async def get_flow(request: web.Request) -> web.Response:
    ctx = context_of(request)
    graph = _graph(request)
    diagram = diagram_from_graph(graph)
    body = _flow_summary(ctx, graph)
    body.update(
        {
            "start": graph.start,
            "node_list": [{"id": n.id, "type": n.type} for n in graph.nodes.values()],
            "settings": graph.settings,
            "mermaid": render_mermaid(diagram),
            "diagram_url": f"/api/flows/{graph.flow_id}/diagram.svg",
        }
    )
    return web.json_response(body)


async def flow_diagram(request: web.Request) -> web.Response:
    graph = _graph(request)
    return web.Response(text=render_svg(diagram_from_graph(graph)), content_type="image/svg+xml")


def trigger_json(trigger: Trigger, now: dt.datetime) -> dict[str, Any]:
    hours = trigger.business_hours
    return {
        "number": trigger.number,
        "flow": trigger.flow,
        "file": _relative(trigger.source),
        "language": trigger.language,
        "greeting_message": trigger.greeting_message,
        "max_call_duration": trigger.max_call_duration,
        "enable_recording": trigger.enable_recording,
        "voicemail_enabled": trigger.voicemail_enabled,
        "voicemail_flow": trigger.voicemail_flow,
        "business_hours": None
        if hours is None
        else {
            "timezone": hours.timezone,
            "open_now": hours.is_open(now),
            "outside_action": hours.outside_action,
            "schedule": {
                day: [f"{a // 60:02d}:{a % 60:02d}-{b // 60:02d}:{b % 60:02d}" for a, b in ranges]
                for day, ranges in hours.schedule.items()
            },
        },
    }


async def list_triggers(request: web.Request) -> web.Response:
    ctx = context_of(request)
    now = dt.datetime.fromtimestamp(ctx.clock(), dt.UTC)
    triggers = [trigger_json(t, now) for _, t in sorted(ctx.library.triggers.items())]
    return web.json_response({"triggers": triggers})


async def list_problems(request: web.Request) -> web.Response:
    ctx = context_of(request)
    report = ctx.last_reload
    problems = [
        d.to_json() | {"text": d.one_line(), "file": _relative(d.file)}
        for diagnostics in ctx.library.problems.values()
        for d in diagnostics
    ]
    return web.json_response(
        {
            "summary": report.summary() if report else None,
            "kept": list(report.kept) if report else [],
            "problems": problems,
        }
    )


async def list_calls(request: web.Request) -> web.Response:
    ctx = context_of(request)
    query = request.query
    status = query.get("status") or None
    if status is not None and status not in ALL_STATUSES:
        return _error(400, f"status must be one of {', '.join(ALL_STATUSES)}.")
    try:
        limit = int(query.get("limit", "50"))
    except ValueError:
        return _error(400, "limit must be a whole number.")
    calls = await ctx.records.list_calls(
        limit=limit,
        status=status,
        flow_id=query.get("flow_id") or None,
        live=query.get("live") in ("1", "true", "yes"),
    )
    return web.json_response({"calls": calls})


async def get_call(request: web.Request) -> web.Response:
    ctx = context_of(request)
    call_id = request.match_info["call_id"]
    record = await ctx.records.get_call(call_id)
    if record is None:
        return _error(404, f"no call with the id '{call_id}'.")
    turns = await ctx.records.transcript(call_id)
    record["transcript"] = [t.to_json() for t in turns]
    record["workflow_id"] = workflow_id(call_id)
    return web.json_response(record)


async def call_context(request: web.Request) -> web.Response:
    """What the voice agent needs when it joins room ``call-<id>``."""
    ctx = context_of(request)
    call_id = request.match_info["call_id"].removeprefix("call-")
    record = await ctx.records.get_call(call_id)
    if record is None:
        return _error(404, f"no call with the id '{call_id}'.")
    return web.json_response(call_context_of(ctx, record))


def call_context_of(ctx: ServerContext, record: dict[str, Any]) -> dict[str, Any]:
    """A call's context for its voice agent (a LiveKit agent asks /api/internal for it,
    voxflow dev's agents read it here): the language and voice it is spoken in, its
    greeting, whether it is recorded, and the fixed texts its flow version says (the
    agent prepares them into the prompt cache while it is quiet)."""
    call_id = record["call_id"]
    graph = ctx.library.flow(record["flow_id"] or "")
    trigger = ctx.library.trigger_for(record["called"] or "")
    settings = graph.settings if graph is not None else {}
    return {
        "call_id": call_id,
        "room": workflow_id(call_id),
        "workflow_id": workflow_id(call_id),
        "status": record["status"],
        "telnyx_call_id": record["telnyx_call_id"],
        "caller_number": record["caller"],
        "called_number": record["called"],
        "flow_id": record["flow_id"],
        "flow_version": record["flow_version"],
        "language": (trigger.language if trigger else None) or settings.get("language"),
        "voice": settings.get("voice"),
        "greeting_message": trigger.greeting_message if trigger else None,
        "enable_recording": bool(trigger and trigger.enable_recording),
        "settings": settings,
        "prompts": graph_prompts(graph) if graph is not None else [],
    }


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


def _json(data: Any) -> str:
    import json

    return json.dumps(data)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/flows", list_flows)
    app.router.add_get("/api/flows/{flow_id}", get_flow)
    app.router.add_get("/api/flows/{flow_id}/diagram.svg", flow_diagram)
    app.router.add_get("/api/triggers", list_triggers)
    app.router.add_get("/api/problems", list_problems)
    app.router.add_get("/api/calls", list_calls)
    app.router.add_get("/api/calls/{call_id}", get_call)
    app.router.add_get("/api/internal/call-context/{call_id}", call_context)
    app.router.add_get("/api/openapi.json", openapi)
