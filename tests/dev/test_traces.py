"""One whole call's span tree, received by a local OTLP receiver from a real ``voxflow dev``.

The call comes in as Telnyx's TeXML webhook would bring it; the dev agent (offline
engines) greets, asks, hears nothing twice and hangs up. With
OTEL_EXPORTER_OTLP_ENDPOINT set, the spans of the server, the workflow, its
activities and nodes, and the agent arrive over OTLP/HTTP in one trace, each
with the call id, linked parent to child across Temporal's headers and the
voice bus; /metrics has the agent's TTS latency.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from engine.server.telnyx import call_id_for
from tests.dev.dev_server import next_message, start_dev, stop_dev
from tests.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.waiting import wait_until_sync


def _chain(span: ReceivedSpan, by_id: dict[str, ReceivedSpan]) -> list[str]:
    names = []
    while span.parent_id and span.parent_id in by_id:
        span = by_id[span.parent_id]
        names.append(span.name)
    return names


def test_one_call_is_one_trace_across_server_workflow_activities_and_agent(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with OtlpReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")
        monkeypatch.setenv("OTEL_SERVICE_NAME", "voxflow-dev")
        dev = start_dev(tmp_path)
        try:
            call_id = call_id_for("v3:trace-1")

            async def call() -> str:
                async with aiohttp.ClientSession() as http:
                    form = {
                        "CallSid": "v3:trace-1",
                        "From": "+15557654321",
                        "To": "+15550007000",
                        "CallStatus": "ringing",
                    }
                    async with http.post(f"{dev.url}/webhooks/telnyx/texml", data=form) as r:
                        assert r.status == 200
                    record = await dev.ended_record(http, call_id)
                    assert record["status"] == "completed", record
                    async with http.get(f"{dev.url}/metrics") as response:
                        return await response.text()

            metrics = asyncio.run(call())
            wait_until_sync(
                lambda: any(s.name == "agent hangup" for s in receiver.received()),
                timeout=30,
                what="the agent's hangup span",
            )
        finally:
            stop_dev(dev)

    spans = [s for s in receiver.received() if s.attributes.get("voxflow.call_id") == call_id]
    by_id = {s.span_id: s for s in receiver.received()}
    webhook = next(s for s in spans if s.name == "POST /webhooks/telnyx/texml")
    assert {s.trace_id for s in spans} == {webhook.trace_id}, "one trace for the whole call"
    # Every span of that trace carries the call id.
    assert all(
        s.attributes.get("voxflow.call_id") == call_id
        for s in receiver.received()
        if s.trace_id == webhook.trace_id
    )
    names = {s.name for s in spans}
    assert {
        "StartWorkflow:CallFlowWorkflow",
        "RunWorkflow:CallFlowWorkflow",
        "StartActivity:run_node",
        "RunActivity:run_node",
        "node welcome",
        "node menu",
        "node goodbye",
        "agent speak",
        "agent listen",
        "agent hangup",
    } <= names, names

    start = next(s for s in spans if s.name == "StartWorkflow:CallFlowWorkflow")
    assert start.parent_id == webhook.span_id
    greeting = next(s for s in spans if s.name == "agent speak" and by_id[s.parent_id].name == "node welcome")
    # Temporal's interceptor parents the workflow's spans on the start it was given.
    assert _chain(greeting, by_id) == [
        "node welcome",
        "RunActivity:run_node",
        "StartActivity:run_node",
        "StartWorkflow:CallFlowWorkflow",
        "POST /webhooks/telnyx/texml",
    ], _chain(greeting, by_id)
    run = next(s for s in spans if s.name == "RunWorkflow:CallFlowWorkflow")
    assert run.parent_id == start.span_id
    assert greeting.attributes["voxflow.tts.latency_ms"] > 0
    assert "tts:started" in greeting.events and "tts:complete" in greeting.events
    listen = next(s for s in spans if s.name == "agent listen")
    assert by_id[listen.parent_id].name == "node menu"
    # The seed's latency figures, from the agent's events, on /metrics.
    assert "tts_latency_p95 " in metrics and "voxflow_tts_latency_seconds_count" in metrics
    tts_p95 = float(
        next(line.split()[1] for line in metrics.splitlines() if line.startswith("tts_latency_p95 "))
    )
    assert tts_p95 > 0
    assert 'voxflow_node_calls_total{flow="bank-line",node="menu",outcome="reached"}' in metrics


def test_a_browser_call_is_one_trace_with_its_call_id(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The monitor's caller socket lives across calls: each call it starts is its own
    trace, rooted at a ``browser call`` span that carries the call id."""
    with OtlpReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")
        dev = start_dev(tmp_path)
        try:

            async def call() -> str:
                async with aiohttp.ClientSession() as http:
                    ws = await http.ws_connect(f"{dev.url}/api/caller?token={dev.token}")
                    await ws.send_json({"type": "start", "flow": "bank-line", "mode": "text"})
                    call_id = str((await next_message(ws, "started"))["call_id"])
                    await ws.send_json({"type": "hangup"})
                    await next_message(ws, "ended")
                    await ws.close()
                    return call_id

            call_id = asyncio.run(call())
            assert call_id
            wait_until_sync(
                lambda: any(
                    s.name == "RunWorkflow:CallFlowWorkflow"
                    and s.attributes.get("voxflow.call_id") == call_id
                    for s in receiver.received()
                ),
                timeout=30,
                what="the browser call's workflow span",
            )
        finally:
            stop_dev(dev)

    received = receiver.received()
    assert not any(s.name.startswith("GET /api/caller") for s in received), "the socket is not one span"
    root = next(s for s in received if s.name == "browser call")
    assert root.attributes.get("voxflow.call_id") == call_id
    start = next(s for s in received if s.name == "StartWorkflow:CallFlowWorkflow")
    assert start.parent_id == root.span_id and start.trace_id == root.trace_id
    assert all(
        s.attributes.get("voxflow.call_id") == call_id for s in received if s.trace_id == root.trace_id
    )
