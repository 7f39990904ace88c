"""The API: authentication, the OpenAPI document, the agent's call context, WebSocket, metrics."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp

from engine.runtime.messages import workflow_id
from engine.server.telnyx import call_id_for
from tests.server.support import (
    API_TOKEN,
    INTERNAL_TOKEN,
    harness,
    telnyx_call_id,
    texml_form,
)


def test_api_routes_auth_and_documents(temporal_settings: Any, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with harness(temporal_settings, tmp_path) as h:
            http, url = h.http, h.url
            for path in (
                "/api/flows",
                "/api/calls",
                "/api/events",
                "/api/ws",
                "/api/calls/x/events",
                "/api/triggers",
            ):
                async with http.get(f"{url}{path}") as response:
                    assert response.status == 401, path
                    assert "VOXFLOW_API_TOKEN" in (await response.json())["error"]
                async with http.get(f"{url}{path}?token=wrong") as response:
                    assert response.status == 401, path
            async with http.get(f"{url}/api/flows", cookies={"voxflow_token": API_TOKEN}) as r:
                assert r.status == 200

            document = await h.api("/api/openapi.json", token=None)
            assert document["openapi"].startswith("3.1")
            documented = set(document["paths"])
            served = {
                "/webhooks/telnyx",
                "/webhooks/telnyx/texml",
                "/webhooks/livekit",
                "/api/flows",
                "/api/flows/{flow_id}",
                "/api/flows/{flow_id}/diagram.svg",
                "/api/flows/{flow_id}/events",
                "/api/triggers",
                "/api/problems",
                "/api/calls",
                "/api/calls/{call_id}",
                "/api/calls/{call_id}/events",
                "/api/events",
                "/api/ws",
                "/api/internal/call-context/{call_id}",
                "/api/openapi.json",
                "/metrics",
                "/healthz",
                "/monitor/",
                "/api/stats",
                "/api/flows/{flow_id}/stats",
                "/api/calls/{call_id}/test",
            }
            assert documented == served

            flows = await h.api("/api/flows")
            greeting = next(f for f in flows["flows"] if f["flow_id"] == "greeting")
            assert greeting["numbers"] == ["+15550001000"] and greeting["errors"] == 0
            detail = await h.api("/api/flows/greeting")
            assert detail["mermaid"].startswith("flowchart TD")
            svg = await h.api("/api/flows/greeting/diagram.svg")
            assert 'data-node="ask"' in svg and svg.startswith("<svg")
            triggers = (await h.api("/api/triggers"))["triggers"]
            closed = next(t for t in triggers if t["number"] == "+15550003000")
            assert closed["business_hours"]["open_now"] is False
            async with http.get(
                f"{url}/api/flows/nope", headers={"Authorization": f"Bearer {API_TOKEN}"}
            ) as response:
                assert response.status == 404
            async with http.get(
                f"{url}/api/calls?limit=lots", headers={"Authorization": f"Bearer {API_TOKEN}"}
            ) as response:
                assert response.status == 400
            async with http.get(
                f"{url}/api/calls?status=bored", headers={"Authorization": f"Bearer {API_TOKEN}"}
            ) as response:
                assert response.status == 400
            async with http.get(
                f"{url}/api/calls/nope", headers={"Authorization": f"Bearer {API_TOKEN}"}
            ) as response:
                assert response.status == 404

            # The agent's call context: its own token, not the API's.
            telnyx_id = telnyx_call_id()
            call_id = call_id_for(telnyx_id)
            ws = await http.ws_connect(f"{url}/api/ws?token={API_TOKEN}&call_id={call_id}")
            status, _ = await h.texml(texml_form(telnyx_id, called="+15550002000"))
            assert status == 200
            path = f"/api/internal/call-context/{workflow_id(call_id)}"
            async with http.get(f"{url}{path}", headers={"Authorization": f"Bearer {API_TOKEN}"}) as response:
                assert response.status == 401
            context = await h.api(path, token=INTERNAL_TOKEN)
            assert context["call_id"] == call_id and context["room"] == f"call-{call_id}"
            assert context["flow_id"] == "hold" and context["caller_number"] == "+15557654321"
            assert context["prompts"] == []  # the hold flow says nothing

            message = await asyncio.wait_for(ws.receive(), 10)
            assert message.type == aiohttp.WSMsgType.TEXT
            first = json.loads(message.data)
            assert first["type"] == "call:incoming" and first["call_id"] == call_id
            await h.wait_for_call(call_id, "active")
            await h.ctx.temporal_client().get_workflow_handle(workflow_id(call_id)).signal("release")
            seen = [first["type"]]
            while "call:ended" not in seen:
                message = await asyncio.wait_for(ws.receive(), 10)
                seen.append(json.loads(message.data)["type"])
            assert seen[:2] == ["call:incoming", "call:active"]
            assert "call:node_change" in seen
            await ws.close()

            metrics = await h.api("/metrics", token=None)
            assert 'voxflow_calls_total{status="completed"} 1.0' in metrics
            assert 'voxflow_active_calls{status="active"} 0.0' in metrics
            assert "voxflow_webhook_duration_seconds_bucket" in metrics
            assert 'voxflow_node_duration_seconds_count{node_type="wait_for_signal"' not in metrics
            health = await h.api("/healthz", token=None)
            assert health["status"] == "ok"
            async with http.get(f"{url}/") as response:  # redirected to the monitor page
                assert response.status == 200 and "voxflow monitor" in await response.text()

            # A flow that speaks: its version's fixed texts come with the context, for
            # the agent to prepare while it is quiet (a text with ${...} is not fixed).
            greeted = telnyx_call_id()
            status, _ = await h.texml(texml_form(greeted, called="+15550001000"))
            assert status == 200
            path = f"/api/internal/call-context/{workflow_id(call_id_for(greeted))}"
            context = await h.api(path, token=INTERNAL_TOKEN)
            assert context["prompts"] == ["Hello! Thanks for calling.", "What is your name?"]

    asyncio.run(scenario())
