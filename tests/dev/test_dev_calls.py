"""``voxflow dev`` answers every call: the documented curl call, and the caller socket's rules.

Against a real ``voxflow dev`` (embedded Temporal and Redis, SQLite, the agent on
offline engines). The caller socket is driven here by aiohttp's WebSocket
client, the way the monitor page drives it (tests/dev/test_browser_call.py).
"""

from __future__ import annotations

import asyncio
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
from tests.dev.dev_server import CALL_SECONDS, LIVE, DevServer, next_message, start_dev, stop_dev


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    server = start_dev(tmp_path_factory.mktemp("dev"))
    try:
        yield server
    finally:
        stop_dev(server)


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
            async with http.get(f"{dev.url}/api/calls", headers=dev.headers) as response:
                calls = (await response.json())["calls"]
            call = next(c for c in calls if c["telnyx_call_id"] == "v3:test-1")
            return await dev.ended_record(http, call["call_id"])

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
            assert "no call" in (await next_message(ws, "error"))["message"]
            await ws.send_json({"type": "start", "flow": "no-such-flow"})
            assert "bank-line" in (await next_message(ws, "error"))["message"]
            await ws.send_json({"type": "start", "flow": "bank-line", "tab": "tab-1", "rate": 48000})
            started = await next_message(ws, "started")
            call_id = started["call_id"]
            # A second call from the same tab, on this socket or another, is refused.
            await ws.send_json({"type": "start", "flow": "bank-line", "tab": "tab-1"})
            assert "already" in (await next_message(ws, "error"))["message"]
            other = await http.ws_connect(f"{dev.url}/api/caller?token={dev.token}")
            await other.send_json({"type": "start", "flow": "bank-line", "tab": "tab-1"})
            assert "already" in (await next_message(other, "error"))["message"]
            await other.close()
            # Frames that are not audio, or too big, are dropped; the call goes on.
            await ws.send_str("this is not JSON")
            assert "dropped" in (await next_message(ws, "error"))["message"]
            await ws.send_bytes(b"\x01\x02\x03")  # odd length: not 16-bit samples
            await ws.send_bytes(bytes(200_000))  # oversized
            await ws.send_json({"type": "dtmf", "digit": "x"})
            assert "keypad" in (await next_message(ws, "error"))["message"]
            # The caller says "balance" at 48 kHz; the server resamples it.
            answer = np.concatenate([silence(0.3), speech("balance"), silence(1.0)])
            at_48k = np.repeat(answer, 3).astype("<i2").tobytes()
            await next_message(ws, "node")  # the call is under way
            assert (await dev.record(http, call_id))["status"] in LIVE
            while (await next_message(ws, "node"))["node"] != "menu":
                pass
            # The menu's question is said (a line is in the transcript once it has been); then
            # the answer.
            await next_message(ws, "transcript", "For your balance, say balance")
            for offset in range(0, len(at_48k), 1920):
                await ws.send_bytes(at_48k[offset : offset + 1920])
                await asyncio.sleep(0.02)  # 20 ms of audio a frame, sent as a microphone does
            ended = await next_message(ws, "ended")
            assert ended["status"] == "completed", ended
            record = await dev.ended_record(http, call_id)
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
            await dev.until_served(http, "broken-lookup")  # hot reload picks the new file up
            ws = await http.ws_connect(f"{dev.url}/api/caller?token={dev.token}")
            await ws.send_json({"type": "start", "flow": "broken-lookup", "mode": "text"})
            call_id = (await next_message(ws, "started"))["call_id"]
            ended = await next_message(ws, "ended")
            assert ended["status"] == "failed", ended
            await ws.close()
            return str(call_id)

    call_id = asyncio.run(scenario())
    printed = dev.wait_printed(f"call {call_id}")
    lines = [line for line in printed.splitlines() if call_id in line]
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
            return await dev.ended_record(http, call_id)

    assert "balance" in asyncio.run(record())["node_path"]
