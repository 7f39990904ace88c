"""Faults the front door must ride out, with real processes killed for real.

1. The Temporal dev server is SIGKILLed while calls are in progress and started again
   on its database file (and port): the calls carry on and end, their records right.
2. ``voxflow serve`` is SIGKILLed in the middle of a Call Control webhook (Temporal
   held still with SIGSTOP, so the kill lands after the event was claimed and the call
   recorded, before the workflow's start returned): Telnyx's redelivery to the server
   started again is handled, once: one workflow, one record, one answer and one bridge.

Each test has a Temporal server of its own (the session's must not be killed).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from engine.runtime.messages import workflow_id
from engine.runtime.temporal_server import EmbeddedTemporal, TemporalSettings
from engine.server.stack import free_port
from engine.server.telnyx import call_id_for
from tests.server.support import API_TOKEN, call_event, harness, telnyx_call_id, texml_form
from tests.server.telnyx_api_server import API_KEY, TelnyxApiServer
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]


def test_temporal_killed_mid_call_and_restarted_on_its_database(tmp_path: Path) -> None:
    db_file = tmp_path / "temporal.db"
    port = free_port()
    first = EmbeddedTemporal(db_file=db_file, port=port).start()
    second: EmbeddedTemporal | None = None
    try:
        settings = TemporalSettings(address=first.address)

        async def scenario() -> None:
            nonlocal second
            async with harness(settings, tmp_path) as h:
                sids = [telnyx_call_id() for _ in range(3)]
                for sid in sids:
                    status, xml = await h.texml(texml_form(sid, called="+15550002000"))
                    assert status == 200 and "<Dial>" in xml
                for sid in sids:
                    await h.wait_for_call(call_id_for(sid), "active")
                for sid in sids:  # each call waits in its wait_for_signal node: the kill is mid-call
                    await h.wait_at_node(call_id_for(sid), "approval", timeout=30)

                assert first.pid is not None
                os.kill(first.pid, signal.SIGKILL)
                await asyncio.to_thread(_wait_dead, first)
                # While it is down the calls are where they were; Telnyx is told to retry.
                status, _ = await h.texml(
                    texml_form(sids[2], status="completed", CallbackSource="call-progress-events")
                )
                assert status == 503

                second = await EmbeddedTemporal(db_file=db_file, port=port).start_async()
                client = h.ctx.temporal_client()
                for sid in sids[:2]:
                    await _retry(
                        lambda sid=sid: client.get_workflow_handle(workflow_id(call_id_for(sid))).signal(
                            "release"
                        )
                    )
                # Telnyx's retry of the hangup it could not deliver.
                status, _ = await h.texml(
                    texml_form(
                        sids[2],
                        status="completed",
                        CallbackSource="call-progress-events",
                        HangupCause="normal_clearing",
                    )
                )
                assert status == 200
                for sid in sids[:2]:
                    record = await h.wait_for_call(call_id_for(sid), "completed", timeout=60)
                    assert record["node_path"] == ["prepare", "approval", "done"]
                    assert record["reason"] == "released"
                    assert record["variables"]["version_seen"] == "one"
                record = await h.wait_for_call(call_id_for(sids[2]), "user_hangup", timeout=60)
                assert "normal_clearing" in record["reason"]
                live = await h.ctx.records.count_live()
                assert live == {"ringing": 0, "active": 0}

        asyncio.run(scenario())
    finally:
        first.stop()
        if second is not None:
            second.stop()


def _wait_dead(server: EmbeddedTemporal) -> None:
    process = server._process  # noqa: SLF001 - the test killed it and waits for it
    if process is not None:
        process.wait(20)


async def _retry(action: Any, timeout: float = 60.0) -> None:
    """Temporal just came back: the client reconnects on its own; retry until it has."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            await action()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)  # a pause between two tries, not a wait on time


class ServeProcess:
    """``voxflow serve`` as a child process, its output collected."""

    def __init__(self, port: int, env: dict[str, str], log: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._log = log.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "engine.cli.main",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-reload",
            ],
            cwd=REPO,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    async def ready(self, http: aiohttp.ClientSession, timeout: float = 60.0) -> None:
        async def healthy() -> bool:
            try:
                async with http.get(f"{self.url}/healthz") as response:
                    if response.status == 200:
                        return True
            except aiohttp.ClientError:
                pass
            assert self.process.poll() is None, "voxflow serve exited"
            return False

        await wait_until(healthy, timeout=timeout, interval=0.1, what="voxflow serve to start")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()


def _expire(database: Path, claim: str) -> None:
    """The lease on ``claim`` runs out, as it does once its seconds have passed."""
    with sqlite3.connect(database, timeout=10) as connection:
        changed = connection.execute(
            "UPDATE voxflow_claims SET expires_at = ? WHERE claim = ?", (time.time() - 1, claim)
        ).rowcount
    assert changed == 1, f"no lease on {claim}"


def _record_exists(database: Path, call_id: str) -> bool:
    try:
        with sqlite3.connect(database, timeout=1) as connection:
            row = connection.execute("SELECT 1 FROM voxflow_calls WHERE call_id = ?", (call_id,)).fetchone()
        return row is not None
    except sqlite3.Error:
        return False


def test_serve_killed_mid_webhook_then_telnyx_s_redelivery_is_handled_once(tmp_path: Path) -> None:
    from tests.server.support import TelnyxSigner, copy_flows

    temporal = EmbeddedTemporal(db_file=tmp_path / "temporal.db").start()
    signer = TelnyxSigner()
    database = tmp_path / "calls.db"
    serves: list[ServeProcess] = []
    stopped = False
    try:

        async def scenario() -> None:
            nonlocal stopped
            from engine.runtime.services import RuntimeServices
            from engine.runtime.temporal_server import connect_client
            from engine.runtime.worker import WorkerOptions, create_worker
            from engine.server.events import NullPublisher
            from engine.server.recorder import CallRecorder
            from engine.server.records import open_records

            async with TelnyxApiServer() as api, aiohttp.ClientSession() as http:
                env = {
                    "TEMPORAL_ADDRESS": temporal.address,
                    "VOXFLOW_API_TOKEN": API_TOKEN,
                    "TELNYX_PUBLIC_KEY": signer.public_base64,
                    "TELNYX_API_KEY": API_KEY,
                    "TELNYX_BASE_URL": api.url,
                    "VOXFLOW_NUMBER_LOOKUP": "off",
                    "VOXFLOW_RECORDS_URL": f"sqlite:///{database}",
                    "VOXFLOW_FLOWS": str(copy_flows(tmp_path / "flows")),
                    # Long: the kill lands while the webhook waits on Temporal, however slow
                    # the machine, and the lease it leaves (2 x 30 + 3 s) is certainly held
                    # when Telnyx first redelivers.
                    "VOXFLOW_TEMPORAL_DEADLINE": "30",
                    "VOXFLOW_REDIS_URL": "",
                    "LIVEKIT_SIP_HOST": "sip.example.test",
                }
                port = free_port()
                serves.append(ServeProcess(port, env, tmp_path / "serve.log"))
                await serves[-1].ready(http)

                control_id = telnyx_call_id()
                call_id = call_id_for(control_id)
                event_id = str(uuid.uuid4())
                body = call_event("call.initiated", control_id, called="+15550002000", event_id=event_id)

                async def deliver(url: str, stamp: int | None = None) -> tuple[int, Any]:
                    headers = {**signer.headers(body, stamp), "Content-Type": "application/json"}
                    async with http.post(f"{url}/webhooks/telnyx", data=body, headers=headers) as response:
                        return response.status, await response.json()

                assert temporal.pid is not None
                os.kill(temporal.pid, signal.SIGSTOP)
                stopped = True
                first = asyncio.create_task(deliver(serves[-1].url))

                def recorded() -> bool:
                    assert not first.done(), first
                    return _record_exists(database, call_id)

                await wait_until(recorded, interval=0.01, what="the webhook to get to the call")
                serves[-1].kill()  # mid-webhook: claimed and recorded, the start not back
                with pytest.raises(aiohttp.ClientError):
                    await first
                os.kill(temporal.pid, signal.SIGCONT)
                stopped = False

                serves.append(ServeProcess(port, env, tmp_path / "serve.log"))
                await serves[-1].ready(http)
                # Telnyx redelivers, signing each attempt anew (stamps of their own: none
                # equal to the killed delivery's, a replay). The killed delivery's lease is
                # still held: come back later.
                base = int(time.time())
                status, answer = await deliver(serves[-1].url, base - 100)
                assert (status, answer.get("reason")) == (503, "pending"), answer
                # Its lease runs out (the killed server never settles it): the next delivery
                # is handled, once.
                _expire(database, f"event:{event_id}")
                status, answer = await deliver(serves[-1].url, base - 101)
                assert (status, answer.get("status")) == (200, "taken: dial"), answer
                # Once more: acknowledged, not handled again.
                status, answer = await deliver(serves[-1].url, base - 250)
                assert (status, answer["status"]) == (200, "duplicate")

                await wait_until(
                    lambda: len(api.state.actions(control_id)) >= 2, what="the answer and the bridge"
                )
                assert api.state.actions(control_id)[:2] == ["answer", "transfer"]

                client = await connect_client(TemporalSettings(address=temporal.address))
                workflows = [w async for w in client.list_workflows(f"WorkflowId = '{workflow_id(call_id)}'")]
                assert len(workflows) == 1
                store = await open_records(f"sqlite:///{database}").open()
                worker = create_worker(
                    client, RuntimeServices(recorder=CallRecorder(store, NullPublisher())), WorkerOptions()
                )
                async with worker:
                    await client.get_workflow_handle(workflow_id(call_id)).signal("release")

                    async def completed() -> bool:
                        return (await store.get_call(call_id) or {}).get("status") == "completed"

                    await wait_until(completed, timeout=30, interval=0.1, what="the call to complete")
                # The call is over: nothing more can be sent for it; one answer, one bridge.
                assert api.state.actions(control_id) == ["answer", "transfer"]
                calls = await store.list_calls()
                assert [c["call_id"] for c in calls] == [call_id]
                await store.close()

        asyncio.run(scenario())
    finally:
        if stopped and temporal.pid is not None:
            os.kill(temporal.pid, signal.SIGCONT)
        for serve in serves:
            serve.stop()
        temporal.stop()
