"""A call placed through a real ``voxflow dev`` becomes a conversation test.

The flow asks a question, the caller leaves it unanswered once, then says
"balance"; the flow looks the balance up over HTTP (a local server started
here) and says it. ``voxflow test --from-call`` writes the test beside the flow
and runs it: it passes with the HTTP server gone (the answer recorded during
the call is replayed). Then the flow is edited, and the same test fails,
saying where the call now goes another way.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from engine.server.stack import free_port
from tests.dev.dev_server import DevServer, next_message, start_dev, stop_dev

FLOW = """\
flow: lookup-line
settings:
  no_input_timeout: 3s
start: welcome
nodes:
  welcome:
    type: voice_greet
    message: "Welcome to the lookup line."
    next: menu
  menu:
    type: voice_menu
    prompt: "Say balance or press 1. Say agent or press 2."
    options:
      - key: "1"
        phrases: [balance]
        next: lookup
      - key: "2"
        phrases: [agent]
        next: agent
    no_input:
      - reprompt: "Sorry, I didn't hear anything. Say balance, or agent."
      - next: goodbye
    no_match:
      - reprompt: "Sorry, I didn't catch that. Say balance, or agent."
      - next: goodbye
  lookup:
    type: http_request
    url: "http://127.0.0.1:PORT/balance/${caller_number}"
    save_as: account
    next: tell
    on_error: agent
  tell:
    type: voice_speak
    message: "Your balance is ${account.body.balance} dollars."
    next: goodbye
  agent:
    type: voice_speak
    message: "An agent would take your call now."
    next: goodbye
  goodbye:
    type: voice_hangup
    farewell_message: "Thank you for calling. Goodbye!"
"""


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    server = start_dev(tmp_path_factory.mktemp("dev"))
    try:
        yield server
    finally:
        stop_dev(server)


async def _call(dev: DevServer, port: int) -> str:
    """The call, with the bank's HTTP service up while it runs; its id."""
    asked: list[str] = []

    async def balance(request: web.Request) -> web.Response:
        asked.append(request.match_info["number"])
        return web.json_response({"balance": "42.17"})

    app = web.Application()
    app.router.add_get("/balance/{number}", balance)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession() as http:
            await dev.until_served(http, "lookup-line")  # hot reload picks the new flow up
            ws = await http.ws_connect(f"{dev.url}/api/caller?token={dev.token}")
            await ws.send_json(
                {"type": "start", "flow": "lookup-line", "mode": "text", "caller": "+15557654321"}
            )
            call_id = str((await next_message(ws, "started"))["call_id"])
            await next_message(ws, "transcript", "Sorry, I didn't hear anything")  # left unanswered
            await ws.send_json({"type": "say", "text": "balance"})
            ended = await next_message(ws, "ended")
            assert ended["status"] == "completed", ended
            await ws.close()
    finally:
        await runner.cleanup()
    assert asked == ["+15557654321"]
    return call_id


def _voxflow(dev: DevServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli.main", *args],
        cwd=dev.folder,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_call_becomes_a_test_that_passes_then_shows_a_divergence(dev: DevServer) -> None:
    port = free_port()
    (dev.flows / "lookup-line.yaml").write_text(FLOW.replace("PORT", str(port)))
    call_id = asyncio.run(_call(dev, port))

    # The HTTP service is gone: the test replays the answer recorded during the call.
    made = _voxflow(dev, "test", "--from-call", call_id)
    out = made.stdout + made.stderr
    assert made.returncode == 0, out
    test_file = dev.flows / "tests" / f"lookup-line.call-{call_id[:12]}.test.yaml"
    assert f"Wrote {Path('flows') / 'tests' / test_file.name}" in out, out
    assert "1 passed, 0 failed" in out, out
    written = test_file.read_text()
    assert "- no_answer" in written and "caller: balance" in written, written
    assert '"42.17"' in written or "'42.17'" in written, written
    assert "path:\n    - welcome\n    - menu\n    - lookup\n    - tell\n    - goodbye" in written

    # The flow changes: the menu's two answers swap places. The same test shows where.
    flow = dev.flows / "lookup-line.yaml"
    text = flow.read_text()
    flow.write_text(
        text.replace("[balance]\n        next: lookup", "[balance]\n        next: X")
        .replace("[agent]\n        next: agent", "[agent]\n        next: lookup")
        .replace("next: X", "next: agent")
    )
    rerun = _voxflow(dev, "test", str(test_file.relative_to(dev.folder)))
    out = rerun.stdout + rerun.stderr
    assert rerun.returncode == 1, out
    assert "FAIL" in out and "0 passed, 1 failed" in out, out
    assert 'expected the agent to say "Your balance is 42.17 dollars."' in out, out
    assert "welcome → menu → agent → goodbye" in out, out
    assert "Traceback" not in out

    # The monitor's button: the same test, masked, through the API.
    async def masked() -> dict[str, Any]:
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{dev.url}/api/calls/{call_id}/test?mask=1", headers={"Authorization": f"Bearer {dev.token}"}
            ) as r:
                assert r.status == 200, await r.text()
                body: dict[str, Any] = await r.json()
                return body

    body = asyncio.run(masked())
    assert body["file"].endswith(test_file.name) and body["flow_changed"] is True
    assert "+15557654321" not in body["text"] and "+15550100000" in body["text"]
