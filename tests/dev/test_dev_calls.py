"""``voxflow dev`` answers every call: the documented curl call, and the caller socket's rules.

Against a real ``voxflow dev`` (embedded Temporal and Redis, SQLite, the agent on
offline engines). The caller socket is driven here by aiohttp's WebSocket
client, the way the monitor page drives it (tests/dev/test_browser_call.py).
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import numpy as np
import pytest

from tests.agent.speech import silence, speech
from tests.dev.dev_server import DevServer, start_dev, stop_dev

CALL_SECONDS = 90.0


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    server = start_dev(tmp_path_factory.mktemp("dev"))
    try:
        yield server
    finally:
        stop_dev(server)


def _headers(dev: DevServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {dev.token}"}


async def _record(
    http: aiohttp.ClientSession, dev: DevServer, call_id: str, until_ended: bool = True
) -> dict[str, Any]:
    deadline = time.monotonic() + CALL_SECONDS
    while True:
        async with http.get(f"{dev.url}/api/calls/{call_id}", headers=_headers(dev)) as response:
            record: dict[str, Any] = await response.json()
        if not until_ended or record.get("status") not in ("ringing", "active", None):
            return record
        assert time.monotonic() < deadline, record
        await asyncio.sleep(0.25)


async def _next_json(
    ws: aiohttp.ClientWebSocketResponse, kind: str, timeout: float = CALL_SECONDS
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        message = await ws.receive(timeout=max(0.1, deadline - time.monotonic()))
        if message.type == aiohttp.WSMsgType.TEXT:
            data: dict[str, Any] = json.loads(message.data)
            if data["type"] == kind:
                return data
        elif message.type != aiohttp.WSMsgType.BINARY:
            raise AssertionError(f"the socket closed waiting for {kind}: {message}")


def test_the_documented_curl_call_is_answered_and_completes(dev: DevServer) -> None:
    """docs/telephony.md's curl call: greeting said, no-input reprompt, an ending."""

    async def scenario() -> dict[str, Any]:
        async with aiohttp.ClientSession() as http:
            form = {
                "CallSid": "v3:test-1",
                "From": "+15557654321",
                "To": "+15550007000",
                "CallStatus": "ringing",
            }
            async with http.post(f"{dev.url}/webhooks/telnyx/texml", data=form) as response:
                assert response.status == 200
                assert "<Dial>" in await response.text()
            async with http.get(f"{dev.url}/api/calls", headers=_headers(dev)) as response:
                calls = (await response.json())["calls"]
            call = next(c for c in calls if c["telnyx_call_id"] == "v3:test-1")
            return await _record(http, dev, call["call_id"])

    record = asyncio.run(scenario())
    assert record["status"] == "completed", record
    said = [t["text"] for t in record["transcript"] if t["speaker"] == "agent"]
    assert said[0] == "Welcome to the test bank.", said
    assert "Sorry, I didn't hear anything. Say balance, or agent." in said
    assert said[-1] == "Thank you for calling. Goodbye!"
    assert "did not finish" not in dev.printed()


def test_the_caller_socket_refuses_what_it_must(dev: DevServer) -> None:
    async def scenario() -> None:
        async with aiohttp.ClientSession() as http:
            # No token: refused before any call can start.
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(f"{dev.url}/api/caller")
            assert refused.value.status == 401
            # Another site's page, even with the token (a cookie would be sent along).
            with pytest.raises(aiohttp.WSServerHandshakeError) as foreign:
                await http.ws_connect(f"{dev.url}/api/caller?token={dev.token}", origin="http://evil.example")
            assert foreign.value.status == 403

            ws = await http.ws_connect(f"{dev.url}/api/caller?token={dev.token}")
            await ws.send_json({"type": "dtmf", "digit": "1"})
            assert "no call" in (await _next_json(ws, "error"))["message"]
            await ws.send_json({"type": "start", "flow": "no-such-flow"})
            assert "bank-line" in (await _next_json(ws, "error"))["message"]
            await ws.send_json({"type": "start", "flow": "bank-line", "tab": "tab-1", "rate": 48000})
            started = await _next_json(ws, "started")
            call_id = started["call_id"]
            # A second call from the same tab, on this socket or another, is refused.
            await ws.send_json({"type": "start", "flow": "bank-line", "tab": "tab-1"})
            assert "already" in (await _next_json(ws, "error"))["message"]
            other = await http.ws_connect(f"{dev.url}/api/caller?token={dev.token}")
            await other.send_json({"type": "start", "flow": "bank-line", "tab": "tab-1"})
            assert "already" in (await _next_json(other, "error"))["message"]
            await other.close()
            # Frames that are not audio, or too big, are dropped; the call goes on.
            await ws.send_str("this is not JSON")
            assert "dropped" in (await _next_json(ws, "error"))["message"]
            await ws.send_bytes(b"\x01\x02\x03")  # odd length: not 16-bit samples
            await ws.send_bytes(bytes(200_000))  # oversized
            await ws.send_json({"type": "dtmf", "digit": "x"})
            assert "keypad" in (await _next_json(ws, "error"))["message"]
            # The caller says "balance" at 48 kHz; the server resamples it.
            answer = np.concatenate([silence(0.3), speech("balance"), silence(1.0)])
            at_48k = np.repeat(answer, 3).astype("<i2").tobytes()
            await _next_json(ws, "node")  # the call is under way
            async with http.get(f"{dev.url}/api/calls/{call_id}", headers=_headers(dev)) as response:
                assert (await response.json())["status"] in ("ringing", "active")
            while (await _next_json(ws, "node"))["node"] != "menu":
                pass
            await asyncio.sleep(5.0)  # the menu's question is said; then the answer
            for offset in range(0, len(at_48k), 1920):
                await ws.send_bytes(at_48k[offset : offset + 1920])
                await asyncio.sleep(0.02)
            ended = await _next_json(ws, "ended")
            assert ended["status"] == "completed", ended
            record = await _record(http, dev, call_id)
            assert "balance" in record["node_path"], record
            await ws.close()

    asyncio.run(scenario())
    log = (dev.folder / ".voxflow" / "dev.log").read_text()
    assert "dropped an audio frame of 3 bytes" in log
    assert "dropped an audio frame of 200000 bytes" in log


def test_a_failed_call_is_one_line_in_the_terminal(dev: DevServer) -> None:
    broken = dev.flows / "broken-lookup.yaml"
    broken.write_text(
        "flow: broken-lookup\nstart: look\nnodes:\n  look:\n    type: http_request\n"
        "    url: http://127.0.0.1:9/nothing-listens-here\n    timeout: 1s\n    next: done\n"
        "  done:\n    type: end\n"
    )

    async def scenario() -> str:
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 30
            while True:  # hot reload picks the new file up
                async with http.get(f"{dev.url}/api/flows", headers=_headers(dev)) as response:
                    flows = [f["flow_id"] for f in (await response.json())["flows"]]
                if "broken-lookup" in flows:
                    break
                assert time.monotonic() < deadline, flows
                await asyncio.sleep(0.2)
            ws = await http.ws_connect(f"{dev.url}/api/caller?token={dev.token}")
            await ws.send_json({"type": "start", "flow": "broken-lookup", "mode": "text"})
            call_id = (await _next_json(ws, "started"))["call_id"]
            ended = await _next_json(ws, "ended")
            assert ended["status"] == "failed", ended
            await ws.close()
            return str(call_id)

    call_id = asyncio.run(scenario())
    deadline = time.monotonic() + 10
    while f"call {call_id}" not in dev.printed():
        assert time.monotonic() < deadline, dev.printed()
        time.sleep(0.2)
    lines = [line for line in dev.printed().splitlines() if call_id in line]
    assert len(lines) == 1 and "failed" in lines[0], lines
    assert "Traceback" not in dev.printed()


def test_voxflow_chat_calls_through_the_running_dev_server(dev: DevServer) -> None:
    """`voxflow chat FLOW` in the folder of a running voxflow dev finds it and calls on it."""
    chat = subprocess.Popen(
        [sys.executable, "-m", "engine.cli.main", "chat", "flows/bank-line.yaml"],
        cwd=dev.folder,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert chat.stdin is not None and chat.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + CALL_SECONDS
    for line in chat.stdout:  # the menu's question is being asked: answer it
        seen.append(line)
        if line.strip() == "→ menu":
            chat.stdin.write("balance\n")
            chat.stdin.flush()
        if "The call ended" in line:
            break
        assert time.monotonic() < deadline, seen
    out, _ = chat.communicate(timeout=CALL_SECONDS)
    text = "".join(seen) + out
    assert chat.returncode == 0, text
    assert "a running 'voxflow dev' was found here" in text
    assert "Your balance is forty two dollars." in text, text
    assert "The call ended (completed" in text, text
    call_id = re.search(r"The call (\w+) has begun", text).group(1)  # type: ignore[union-attr]

    async def record() -> dict[str, Any]:
        async with aiohttp.ClientSession() as http:
            return await _record(http, dev, call_id)

    assert "balance" in asyncio.run(record())["node_path"]
