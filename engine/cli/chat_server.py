"""``voxflow chat FLOW --server URL``: the terminal as the caller of a running server's call.

The call is placed through the server's caller socket (engine.server.caller_socket),
the path the monitor page's browser caller takes, so it runs on that server's
workflow, bus and voice agent and shows on its monitor page like any call. What
you type is heard as the caller's words; ``#1`` presses keys; ``/hangup`` (or
Ctrl-D) hangs up. Without ``--server``, a ``voxflow dev`` running from this folder
is found through ``.voxflow/dev.json``.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import aiohttp

from engine.core.errors import VoxflowError
from engine.simulate.chat import parse_line
from engine.simulate.terminal import TerminalView, start_reader
from engine.voice.simulated_agent import HangUp, Press, Say

SERVER_COMMANDS = "what you type is said; #1 presses keys; /hangup (or Ctrl-D) hangs up"


async def call_through_server(
    view: TerminalView, url: str, token: str | None, flow_id: str, caller: str
) -> str:
    """Place the call and be its caller until it ends; returns how it ended."""
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    start_reader(
        asyncio.get_running_loop(), lambda loop, text: loop.call_soon_threadsafe(lines.put_nowait, text), view
    )
    query = f"?token={token}" if token else ""
    async with aiohttp.ClientSession() as http:
        try:
            ws = await http.ws_connect(f"{url.rstrip('/')}/api/caller{query}")
        except aiohttp.WSServerHandshakeError as error:
            raise VoxflowError(_refusal(error.status, url)) from None
        except aiohttp.ClientError as error:
            raise VoxflowError(
                f"cannot reach the voxflow server at {url} ({error}); is 'voxflow dev' running?"
            ) from None
        async with ws:
            await ws.send_json({"type": "start", "flow": flow_id, "mode": "text", "caller": caller})
            typing = asyncio.ensure_future(_type(ws, lines, view))
            try:
                return await _listen(ws, view)
            finally:
                typing.cancel()


async def _type(
    ws: aiohttp.ClientWebSocketResponse, lines: asyncio.Queue[str | None], view: TerminalView
) -> None:
    while True:
        text = await lines.get()
        if text is None:
            await ws.send_json({"type": "hangup"})
            return
        command = parse_line(text)
        if command is None:
            continue
        if command.problem:
            view.show("warning", command.problem)
            continue
        if command.show_help:
            view.show("note", SERVER_COMMANDS)
            continue
        sent = False
        for action in command.actions:
            if isinstance(action, Say):
                await ws.send_json({"type": "say", "text": action.text})
                sent = True
            elif isinstance(action, Press):
                for key in action.keys:
                    await ws.send_json({"type": "dtmf", "digit": key})
                sent = True
            elif isinstance(action, HangUp):
                await ws.send_json({"type": "hangup"})
                return
        if not sent:
            view.show("warning", f"not on a server's call: {SERVER_COMMANDS}")


async def _listen(ws: aiohttp.ClientWebSocketResponse, view: TerminalView) -> str:
    async for message in ws:
        if message.type != aiohttp.WSMsgType.TEXT:
            continue  # the agent's audio: a terminal caller reads the words instead
        data: dict[str, Any] = json.loads(message.data)
        kind = data.get("type")
        if kind == "started":
            view.say(f"The call {data['call_id']} has begun; it is on the monitor page too.", "dim")
        elif kind == "transcript" and data.get("final") and data.get("speaker") == "agent":
            view.show("agent", str(data.get("text", "")))
        elif kind == "transcript" and data.get("final") and data.get("kind") == "dtmf":
            view.show("caller", f"[presses {data.get('text')}]")
        elif kind == "node":
            view.show("node", str(data.get("node")))
        elif kind == "error":
            view.show("warning", str(data.get("message")))
        elif kind == "ended":
            outcome = f"{data.get('status')}: {data.get('reason') or ''}".rstrip(": ")
            view.show("end", f"The call ended ({outcome}).")
            return str(data.get("status"))
    raise VoxflowError("the server closed the call's connection")


def _refusal(status: int, url: str) -> str:
    if status == 401:
        return (
            f"the server at {url} needs its API token: give it with --token or "
            "VOXFLOW_API_TOKEN ('voxflow dev' prints it in the monitor page's link)."
        )
    if status == 409:
        return (
            f"the server at {url} runs no voice agent, so it cannot take a caller; "
            "call through 'voxflow dev', or run without --server."
        )
    return f"the server at {url} refused the call (HTTP {status})."


def token_for(url: str, given: str | None, found: tuple[str, str | None] | None) -> str | None:
    """The API token: given, else the environment's, else the discovered dev server's."""
    if given:
        return given
    if os.environ.get("VOXFLOW_API_TOKEN"):
        return os.environ["VOXFLOW_API_TOKEN"]
    if found is not None and found[0].rstrip("/") == url.rstrip("/"):
        return found[1]
    return None
