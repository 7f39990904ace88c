"""The server's front door under attack: each input that gave a 500 is now a 4xx; a
delivery whose handling fails gives its claim back, so Telnyx's retry is handled; the
WebSocket is for this server's own pages (and programs with the token) only."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp

from engine.runtime.messages import workflow_id
from engine.server.telnyx import call_id_for
from tests.server.raw_http import raw_request
from tests.server.support import API_TOKEN, call_event, harness, telnyx_call_id, texml_form
from tests.server.telnyx_api_server import API_KEY, TelnyxApiServer


def test_inputs_that_gave_server_errors_are_refused_in_words(temporal_settings: Any, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with harness(temporal_settings, tmp_path, run_worker=False) as h:
            # Any client, no token needed: a byte that is not UTF-8 in the token.
            for header in (b"Authorization: Bearer \xff\xfe", b"Cookie: voxflow_token=\xff\xfe"):
                name, value = header.split(b": ", 1)
                status, body = await raw_request(h.url, "GET", b"/api/calls", [(name, value)])
                assert status == 401, body
            status, _ = await raw_request(
                h.url, "GET", b"/api/calls/%ED%A0%80", [(b"Authorization", f"Bearer {API_TOKEN}".encode())]
            )
            assert status == 404

            signed = h.signer
            deep = b'{"data": ' * 1000 + b"1" + b"}" * 1000
            bodies = {
                "deep JSON": deep,
                "surrogate call id": call_event("call.hangup", "v3:\\ud800abc").replace(
                    b"\\\\ud800", b"\\ud800"
                ),
                "surrogate number": call_event("call.initiated", telnyx_call_id(), caller="\\ud800").replace(
                    b"\\\\ud800", b"\\ud800"
                ),
                "NUL in a call id": call_event("call.answered", "v3:\\u0000x").replace(
                    b"\\\\u0000", b"\\u0000"
                ),
                "number as a number": json.dumps(
                    {
                        "data": {
                            "id": "x1",
                            "event_type": "call.initiated",
                            "payload": {"call_control_id": "v3:a", "from": 15551234567},
                        }
                    }
                ).encode(),
            }
            for what, body in bodies.items():
                response = await h.post_event(body, signed.headers(body))
                assert response.status == 400, what
            body = call_event("call.answered", telnyx_call_id())
            headers = {**signed.headers(body), "telnyx-timestamp": "9" * 400}
            assert (await h.post_event(body, headers)).status == 401
            headers = {**signed.headers(body), "telnyx-signature-ed25519": "é" * 10}
            assert (await h.post_event(body, headers)).status == 401
            form = texml_form(telnyx_call_id()) + b"&From=%ED%A0%80%00"
            assert (await h.texml(form))[0] in (200, 400)
            metrics = await h.api("/metrics", token=None)
            assert 'voxflow_errors_total{kind="server"}' not in metrics

    asyncio.run(scenario())


def _drop_calls_table(database: Path) -> None:
    """The records database breaks (what a failing disk or a bad migration would do)."""
    with sqlite3.connect(database) as connection:
        connection.execute("ALTER TABLE voxflow_calls RENAME TO voxflow_calls_away")


def _restore_calls_table(database: Path) -> None:
    with sqlite3.connect(database) as connection:
        connection.execute("ALTER TABLE voxflow_calls_away RENAME TO voxflow_calls")


def test_a_delivery_whose_handling_fails_is_handled_when_telnyx_retries(
    temporal_settings: Any, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with (
            TelnyxApiServer() as api,
            harness(
                temporal_settings,
                tmp_path,
                telnyx_api_key=API_KEY,
                telnyx_api_url=api.url,
                number_lookup=False,
            ) as h,
        ):
            database = tmp_path / "calls.db"
            telnyx_id = telnyx_call_id()
            call_id = call_id_for(telnyx_id)
            initiated = call_event("call.initiated", telnyx_id, called="+15550002000")
            _drop_calls_table(database)
            response = await h.post_event(initiated)
            assert response.status == 500  # an honest server error: its database is broken
            # The workflow started beside the record; without its record it was stopped.
            client = h.ctx.temporal_client()
            handle = client.get_workflow_handle(workflow_id(call_id))
            assert (await handle.describe()).status.name == "TERMINATED"
            assert api.state.actions(telnyx_id) == []  # and the caller was not bridged
            _restore_calls_table(database)

            # Telnyx's retry (the same event, signed anew) is handled, not "duplicate".
            response = await h.post_event(initiated, h.signer.headers(initiated, _earlier(2)))
            assert response.status == 200
            assert (await response.json())["status"] == "taken: dial"
            record = await h.wait_for_call(call_id, ("ringing", "active"))
            assert record["flow_id"] == "hold"
            assert (await handle.describe()).status.name == "RUNNING"

            answered = call_event("call.answered", telnyx_id, called="+15550002000")
            _drop_calls_table(database)
            assert (await h.post_event(answered)).status == 500
            _restore_calls_table(database)
            response = await h.post_event(answered, h.signer.headers(answered, _earlier(2)))
            assert (await response.json())["status"] == "answered"
            await handle.signal("release")
            await h.wait_for_call(call_id, "completed")

    asyncio.run(scenario())


def _earlier(seconds: int) -> int:
    import time

    return int(time.time()) - seconds


def test_the_websocket_is_for_this_server_s_pages_and_programs_with_the_token(
    temporal_settings: Any, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with harness(
            temporal_settings, tmp_path, run_worker=False, allowed_origins=("https://ops.example.com",)
        ) as h:
            port = h.url.rsplit(":", 1)[1]
            cookie = {"Cookie": f"voxflow_token={API_TOKEN}"}
            for origin, expected in (
                ("https://evil.example", 403),
                ("http://127.0.0.1.evil.example", 403),
                (f"http://127.0.0.1:{port}", 101),
                ("https://ops.example.com", 101),
            ):
                status = await _upgrade(h.http, f"{h.url}/api/ws", {**cookie, "Origin": origin})
                assert status == expected, origin
            # The page as opened at localhost: its own origin.
            status = await _upgrade(
                h.http, f"http://localhost:{port}/api/ws", {**cookie, "Origin": f"http://localhost:{port}"}
            )
            assert status == 101
            # A program: no Origin, the token as a bearer token.
            status = await _upgrade(h.http, f"{h.url}/api/ws", {"Authorization": f"Bearer {API_TOKEN}"})
            assert status == 101
            status = await _upgrade(h.http, f"{h.url}/api/ws", {})
            assert status == 401
            async with h.http.get(f"{h.url}/healthz") as response:
                assert response.headers["X-Frame-Options"] == "DENY"
                assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]

    asyncio.run(scenario())


async def _upgrade(http: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> int:
    try:
        async with http.ws_connect(url, headers=headers) as ws:
            await ws.close()
            return 101
    except aiohttp.WSServerHandshakeError as error:
        return error.status


def test_webhooks_answer_promptly_while_temporal_is_unreachable(tmp_path: Path) -> None:
    """Temporal down: the caller hears the apology at once (TeXML), Call Control events
    get a 503 for Telnyx to retry, and hang-ups too; nothing waits out the client's retries
    (6-10 s before). The start waits VOXFLOW_TEMPORAL_DEADLINE (0.8 s) at most."""
    from temporalio.client import Client

    from engine.runtime.temporal_server import EmbeddedTemporal
    from engine.server.settings import ServerSettings
    from engine.server.stack import ServerStack, StackOptions
    from engine.server.telnyx import load_public_key
    from tests.server.support import SIP_HOST, TelnyxSigner, copy_flows

    async def scenario() -> None:
        signer = TelnyxSigner()
        # A Temporal the server was connected to, then gone (what took 6-10 s before).
        temporal = await EmbeddedTemporal().start_async()
        client = await Client.connect(temporal.address)
        await temporal.stop_async()
        settings = ServerSettings(
            telnyx_key=load_public_key(signer.public_base64),
            sip_host=SIP_HOST,
            api_token=API_TOKEN,
            records_url=f"sqlite:///{tmp_path / 'calls.db'}",
            flows_dir=copy_flows(tmp_path / "flows"),
        )
        assert settings.temporal_deadline == 0.8
        options = StackOptions(port=0, watch=False)
        async with ServerStack(settings, client, options) as stack, aiohttp.ClientSession() as http:
            loop = asyncio.get_running_loop()
            telnyx_id = telnyx_call_id()
            form = texml_form(telnyx_id, called="+15550002000")
            began = loop.time()
            async with http.post(
                f"{stack.url}/webhooks/telnyx/texml",
                data=form,
                headers={**signer.headers(form), "Content-Type": "application/x-www-form-urlencoded"},
            ) as response:
                xml = await response.text()
            took = loop.time() - began
            assert response.status == 200
            assert "<Say>Sorry, we cannot take your call right now." in xml, xml
            assert took < 3.0, took  # 0.8 s deadline; a loaded machine gets its margin
            record = await stack.context.records.get_call(call_id_for(telnyx_id))
            assert record["status"] == "failed" and "within 0.8 s" in record["reason"]

            body = call_event("call.hangup", telnyx_call_id())
            began = loop.time()
            async with http.post(
                f"{stack.url}/webhooks/telnyx",
                data=body,
                headers={**signer.headers(body), "Content-Type": "application/json"},
            ) as response:
                assert response.status == 503
                assert (await response.json())["reason"] == "unavailable"
            assert loop.time() - began < 3.0
            # Its claim was given back: the retry is handled (still 503, not "duplicate").
            async with http.post(
                f"{stack.url}/webhooks/telnyx",
                data=body,
                headers={**signer.headers(body, _earlier(2)), "Content-Type": "application/json"},
            ) as response:
                assert response.status == 503

    asyncio.run(scenario())
