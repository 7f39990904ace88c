"""The whole call path on the real LiveKit server: voxflow's server, the agent process, LiveKit.

- the voxflow server (ServerStack: webhooks, TeXML, records, a Temporal worker)
  with the Redis voice bus, checking LiveKit's webhook signatures with the test
  bed's key;
- the LiveKit test bed (the real server, engine.testbed.livekit_server) sending its
  webhooks to that server;
- ``voxflow agent`` as a child process (the real worker.py path), registered
  with LiveKit, offline speech engines;
- a caller (engine.testbed.sip_caller) dialled into the room the TeXML answer names.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from engine.runtime.temporal_server import TemporalSettings
from engine.server.settings import ServerSettings
from engine.server.telnyx import call_id_for
from engine.testbed.livekit_server import LiveKitEndpoints, LiveKitTestBed, free_port, new_keys
from engine.testbed.sip_caller import RoomCaller
from engine.voice.redis_bus import RedisVoiceBus
from tests.server.support import (
    API_TOKEN,
    INTERNAL_TOKEN,
    Harness,
    harness,
    telnyx_call_id,
    texml_form,
)
from tests.waiting import wait_until

FLOWS = Path(__file__).parent / "flows"
CALLED = "+15550001000"
CALLER = "+15557654321"
_SIP_URI = re.compile(r"<Sip>sip:([^@<]+)@([^<]+)</Sip>")


@dataclass
class AgentProcess:
    """``voxflow agent`` in a child process, its log in a file."""

    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "engine.cli.main", "agent", "--log-format", "json"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    async def wait_registered(self, since: int = 0, timeout: float = 60.0) -> None:
        """Until the log (past byte ``since``) says it registered with LiveKit."""
        process = self.process
        assert process is not None

        def registered() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"voxflow agent exited {process.returncode}:\n{self.tail()}")
            return "registered worker" in self.log.read_bytes()[since:].decode(errors="replace")

        try:
            await wait_until(registered, timeout=timeout, interval=0.1, what="the agent to register")
        except AssertionError as problem:
            if "exited" in str(problem):
                raise
            raise AssertionError(f"voxflow agent did not register with LiveKit:\n{self.tail()}") from None

    def job_processes(self, livekit_port: int) -> list[psutil.Process]:
        """The agent's child processes connected to LiveKit: the ones serving a call."""
        assert self.process is not None
        found = []
        for child in psutil.Process(self.process.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if any(c.raddr and c.raddr[1] == livekit_port for c in child.net_connections(kind="tcp")):
                    found.append(child)
        return found

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@dataclass
class CallBed:
    h: Harness
    livekit: LiveKitEndpoints
    agent: AgentProcess
    bus: RedisVoiceBus

    @property
    def livekit_port(self) -> int:
        return int(self.livekit.url.rsplit(":", 1)[1])

    async def incoming_call(self) -> tuple[str, RoomCaller]:
        """Telnyx's TeXML request for an incoming call; a caller for the SIP URI it answers.

        (A Call Control call.initiated is answered through Telnyx's API, which needs
        TELNYX_API_KEY: the TeXML application is the path that dials LiveKit.)"""
        telnyx_id = telnyx_call_id()
        status, xml = await self.h.texml(texml_form(telnyx_id, caller=CALLER, called=CALLED))
        assert status == 200, xml
        match = _SIP_URI.search(xml)
        assert match, xml
        user, host = match.groups()
        call_id = call_id_for(telnyx_id)
        assert user == f"call-{call_id}" and host == "127.0.0.1", xml
        # LiveKit SIP puts the caller in the room the dispatch rule names: with
        # `voxflow livekit setup`'s rule (no prefix), the dialled user.
        caller = RoomCaller(
            self.livekit.url,
            self.livekit.api_key,
            self.livekit.api_secret,
            room_name=user,
            number=CALLER,
            called=CALLED,
        )
        return call_id, caller


@contextlib.asynccontextmanager
async def call_bed(
    temporal_settings: TemporalSettings, redis_url: str, tmp_path: Path
) -> AsyncIterator[CallBed]:
    key, secret = new_keys()
    port = free_port()
    settings = ServerSettings(
        sip_host="127.0.0.1",
        api_token=API_TOKEN,
        internal_token=INTERNAL_TOKEN,
        livekit_api_key=key,
        livekit_api_secret=secret,
        livekit_url=f"ws://127.0.0.1:{port}",
    )
    bus = RedisVoiceBus.from_url(redis_url)
    flows = tmp_path / "flows"
    shutil.copytree(FLOWS, flows)
    async with harness(
        temporal_settings, tmp_path, redis_url=redis_url, voice_bus=bus, flows=flows, settings=settings
    ) as h:
        bed = LiveKitTestBed(
            webhook_urls=[f"{h.url}/webhooks/livekit"],
            keys=(key, secret),
            port=port,
            workdir=tmp_path / "livekit",
        )
        # Off the loop: the server's Temporal worker runs on it.
        endpoints = await asyncio.to_thread(bed.start)
        env = dict(
            os.environ,
            **endpoints.env(),
            VOXFLOW_REDIS_URL=redis_url,
            VOXFLOW_SERVER_URL=h.url,
            VOXFLOW_INTERNAL_TOKEN=INTERNAL_TOKEN,
            VOXFLOW_STT="offline",
            VOXFLOW_TTS="offline",
            VOXFLOW_AGENT_HTTP_PORT="0",
            # Other work on a 2-core machine must not make the worker refuse calls.
            VOXFLOW_AGENT_LOAD_THRESHOLD="inf",
            VOXFLOW_RECORDINGS_DIR=str(tmp_path / "recordings"),
        )
        agent = AgentProcess(env, tmp_path / "agent.log")
        try:
            agent.start()
            await agent.wait_registered()
            yield CallBed(h, endpoints, agent, bus)
        finally:
            await asyncio.to_thread(agent.stop)
            await asyncio.to_thread(bed.stop)
            await bus.close()
