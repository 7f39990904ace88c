"""A real ``voxflow dev`` for tests: the command a user runs, as a child process.

Embedded Temporal, embedded Redis, SQLite, the worker, the server and the voice
agent on offline engines, on tests/dev/flows (copied, so a test may edit them).
The URL and the API token are read from what it prints, as a user reads them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from engine.server.stack import free_port
from tests.waiting import wait_until, wait_until_sync

FLOWS = Path(__file__).parent / "flows"
START_SECONDS = 180.0  # a loaded CI machine starting Temporal, Redis and Silero
CALL_SECONDS = 90.0  # a whole call, on a loaded machine
LIVE = ("ringing", "active")


@dataclass
class DevServer:
    url: str
    token: str
    folder: Path
    output: Path
    process: subprocess.Popen[bytes]

    @property
    def flows(self) -> Path:
        return self.folder / "flows"

    @property
    def headers(self) -> dict[str, str]:
        """The API token, as the API wants it."""
        return {"Authorization": f"Bearer {self.token}"}

    def printed(self) -> str:
        return self.output.read_text(errors="replace")

    def wait_printed(self, text: str, timeout: float = 30.0) -> str:
        """What it has printed, once that includes ``text``."""
        return wait_until_sync(
            lambda: text in self.printed() and self.printed(), timeout=timeout, what=repr(text)
        )

    async def record(self, http: aiohttp.ClientSession, call_id: str) -> dict[str, Any]:
        """The call's record as the API gives it now."""
        async with http.get(f"{self.url}/api/calls/{call_id}", headers=self.headers) as response:
            record: dict[str, Any] = await response.json()
        return record

    async def ended_record(
        self, http: aiohttp.ClientSession, call_id: str, timeout: float = CALL_SECONDS
    ) -> dict[str, Any]:
        """The call's record once the call has ended."""

        async def ended() -> dict[str, Any] | None:
            record = await self.record(http, call_id)
            return record if record.get("status") not in (*LIVE, None) else None

        return await wait_until(ended, timeout=timeout, interval=0.2, what=f"call {call_id} to end")

    async def until_served(self, http: aiohttp.ClientSession, flow_id: str, timeout: float = 30.0) -> None:
        """Until hot reload serves ``flow_id`` (a file a test has just written)."""

        async def served() -> bool:
            async with http.get(f"{self.url}/api/flows", headers=self.headers) as response:
                return flow_id in [f["flow_id"] for f in (await response.json())["flows"]]

        await wait_until(served, timeout=timeout, interval=0.2, what=f"the flow {flow_id} to be served")


def start_dev(folder: Path) -> DevServer:
    shutil.copytree(FLOWS, folder / "flows")
    output = folder / "terminal.txt"
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for name in (
        "VOXFLOW_API_TOKEN",
        "TELNYX_PUBLIC_KEY",
        "LIVEKIT_URL",
        "VOXFLOW_STT",
        "VOXFLOW_TTS",
        "VOXFLOW_REDIS_URL",
    ):
        env.pop(name, None)
    with output.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "engine.cli.main", "dev", "--port", str(port)],
            cwd=folder,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def started() -> re.Match[str] | None:
        text = output.read_text(errors="replace")
        found = re.search(r"Monitor page: (http://\S+)/monitor/#token=(\S+)", text)
        if found and "Stop with Ctrl-C" in text:
            return found
        if process.poll() is not None:
            raise AssertionError(f"it exited with status {process.returncode}")
        return None

    try:
        found = wait_until_sync(started, timeout=START_SECONDS, interval=0.2, what="its links")
    except AssertionError as problem:
        process.kill()
        pytest.fail(f"voxflow dev did not start ({problem}):\n{output.read_text(errors='replace')}")
    return DevServer(found.group(1), found.group(2), folder, output, process)


def stop_dev(server: DevServer) -> None:
    server.process.send_signal(signal.SIGINT)
    try:
        server.process.wait(60)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


async def next_message(
    ws: aiohttp.ClientWebSocketResponse, kind: str, text: str = "", timeout: float = CALL_SECONDS
) -> dict[str, Any]:
    """The caller socket's next JSON message of ``kind`` (whose text has ``text``); the
    messages before it, and the agent's audio, are skipped."""
    deadline = time.monotonic() + timeout
    while True:
        message = await ws.receive(timeout=max(0.1, deadline - time.monotonic()))
        if message.type == aiohttp.WSMsgType.TEXT:
            data: dict[str, Any] = json.loads(message.data)
            if data["type"] == kind and text in str(data.get("text", "")):
                return data
        elif message.type != aiohttp.WSMsgType.BINARY:
            raise AssertionError(f"the socket closed waiting for {kind}: {message}")
