"""A real ``voxflow dev`` for tests: the command a user runs, as a child process.

Embedded Temporal, embedded Redis, SQLite, the worker, the server and the voice
agent on offline engines, on tests/dev/flows (copied, so a test may edit them).
The URL and the API token are read from what it prints, as a user reads them.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.server.stack import free_port

FLOWS = Path(__file__).parent / "flows"
START_SECONDS = 180.0  # a loaded CI machine starting Temporal, Redis and Silero


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

    def printed(self) -> str:
        return self.output.read_text(errors="replace")


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
    deadline = time.monotonic() + START_SECONDS
    while True:
        text = output.read_text(errors="replace")
        found = re.search(r"Monitor page: (http://\S+)/monitor/#token=(\S+)", text)
        if found and "Stop with Ctrl-C" in text:
            return DevServer(found.group(1), found.group(2), folder, output, process)
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"voxflow dev did not start:\n{text}")
        time.sleep(0.2)


def stop_dev(server: DevServer) -> None:
    server.process.send_signal(signal.SIGINT)
    try:
        server.process.wait(60)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
