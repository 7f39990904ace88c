"""Helpers for the server tests: Telnyx's signing, webhook bodies, a whole stack in one loop.

Webhooks are signed exactly as Telnyx signs them: Ed25519 over
``f"{timestamp}|{raw body}"``, the signature base64 in ``telnyx-signature-ed25519``
and the Unix timestamp in ``telnyx-timestamp``, with a key pair made here (the
public half is what an operator pastes into TELNYX_PUBLIC_KEY).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import shutil
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from engine.runtime.temporal_server import TemporalSettings, connect_client
from engine.server.flow_library import FlowLibrary
from engine.server.settings import ServerSettings
from engine.server.stack import ServerStack, StackOptions
from engine.server.telnyx import load_public_key
from tests.waiting import wait_until

FLOWS = Path(__file__).parent / "flows"
API_TOKEN = "test-api-token"
INTERNAL_TOKEN = "test-internal-token"
SIP_HOST = "sip.example.test"
LIVE = ("ringing", "active")  # the statuses of a call not ended


@dataclass
class TelnyxSigner:
    """A Telnyx account's key pair; signs deliveries as Telnyx does."""

    private: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    @property
    def public_base64(self) -> str:
        raw = self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return base64.b64encode(raw).decode()

    def headers(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = self.private.sign(stamp.encode() + b"|" + body)
        return {"telnyx-signature-ed25519": base64.b64encode(signature).decode(), "telnyx-timestamp": stamp}


def call_event(
    event_type: str,
    call_control_id: str,
    *,
    caller: str = "+15557654321",
    called: str = "+15550001000",
    event_id: str | None = None,
    **payload: Any,
) -> bytes:
    """A Call Control v2 webhook body, shaped like Telnyx's."""
    body = {
        "data": {
            "record_type": "event",
            "event_type": event_type,
            "id": event_id or str(uuid.uuid4()),
            "occurred_at": "2026-11-26T10:00:00.000000Z",
            "payload": {
                "call_control_id": call_control_id,
                "call_leg_id": str(uuid.uuid4()),
                "call_session_id": str(uuid.uuid4()),
                "connection_id": "1684641123236054244",
                "client_state": None,
                "direction": "incoming",
                "from": caller,
                "to": called,
                "state": "parked",
                **payload,
            },
        },
        "meta": {"attempt": 1, "delivered_to": "http://localhost/webhooks/telnyx"},
    }
    return json.dumps(body).encode()


def texml_form(
    call_sid: str,
    *,
    caller: str = "+15557654321",
    called: str = "+15550001000",
    status: str = "ringing",
    **extra: str,
) -> bytes:
    params = {
        "AccountSid": "f5586561-8ff0-4291-a51b-c7dfe4139ff9",
        "CallSid": call_sid,
        "From": caller,
        "To": called,
        "CallStatus": status,
        "Direction": "inbound",
        **extra,
    }
    return urllib.parse.urlencode(params).encode()


def telnyx_call_id() -> str:
    return "v3:" + uuid.uuid4().hex + uuid.uuid4().hex[:10]


def copy_flows(target: Path) -> Path:
    shutil.copytree(FLOWS, target, dirs_exist_ok=True)
    return target


@dataclass
class Harness:
    """A running stack plus an HTTP session and the signer."""

    stack: ServerStack
    http: aiohttp.ClientSession
    signer: TelnyxSigner

    @property
    def url(self) -> str:
        return self.stack.url

    @property
    def ctx(self):  # type: ignore[no-untyped-def]
        return self.stack.context

    async def post_event(
        self, body: bytes, headers: Mapping[str, str] | None = None
    ) -> aiohttp.ClientResponse:
        headers = dict(headers if headers is not None else self.signer.headers(body))
        headers["Content-Type"] = "application/json"
        async with self.http.post(f"{self.url}/webhooks/telnyx", data=body, headers=headers) as response:
            await response.read()
            return response

    async def texml(self, body: bytes, headers: Mapping[str, str] | None = None) -> tuple[int, str]:
        headers = dict(headers if headers is not None else self.signer.headers(body))
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        async with self.http.post(
            f"{self.url}/webhooks/telnyx/texml", data=body, headers=headers
        ) as response:
            return response.status, await response.text()

    async def api(self, path: str, token: str | None = API_TOKEN) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.http.get(f"{self.url}{path}", headers=headers) as response:
            assert response.status == 200, (path, response.status, await response.text())
            if response.content_type == "application/json":
                return await response.json()
            return await response.text()

    async def wait_for_call(
        self, call_id: str, status: str | tuple[str, ...], timeout: float = 15.0
    ) -> dict[str, Any]:
        wanted = (status,) if isinstance(status, str) else status

        async def reached() -> dict[str, Any] | None:
            record = await self.ctx.records.get_call(call_id)
            return record if record is not None and record["status"] in wanted else None

        return await wait_until(reached, timeout=timeout, what=f"call {call_id} to reach {wanted}")

    async def wait_for_end(self, call_id: str, timeout: float = 15.0) -> dict[str, Any]:
        """The call's record once the call has ended, however it ended (a test then says
        which end is right: waiting for the right one only would wait out a wrong one)."""

        async def ended() -> dict[str, Any] | None:
            record = await self.ctx.records.get_call(call_id)
            return record if record is not None and record["status"] not in LIVE else None

        return await wait_until(ended, timeout=timeout, what=f"call {call_id} to end")

    async def wait_at_node(self, call_id: str, node: str, timeout: float = 15.0) -> dict[str, Any]:
        """The call's record once the call is in ``node``."""

        async def there() -> dict[str, Any] | None:
            record = await self.ctx.records.get_call(call_id)
            return record if record is not None and record["current_node"] == node else None

        return await wait_until(there, timeout=timeout, what=f"call {call_id} to be in {node}")


@contextlib.asynccontextmanager
async def harness(
    temporal_settings: TemporalSettings,
    tmp_path: Path,
    *,
    redis_url: str | None = None,
    voice_bus: Any = None,
    voice_clock: Any = None,
    flows: Path | None = None,
    settings: ServerSettings | None = None,
    watch: bool = False,
    run_worker: bool = True,
    **overrides: Any,
) -> AsyncIterator[Harness]:
    """A stack on the test flows; ``overrides`` replace fields of its ServerSettings
    (``telnyx_api_key=..., telnyx_api_url=...``)."""
    signer = TelnyxSigner()
    flows_dir = flows or copy_flows(tmp_path / "flows")
    base = ServerSettings(
        telnyx_key=load_public_key(signer.public_base64),
        sip_host=SIP_HOST,
        api_token=API_TOKEN,
        internal_token=INTERNAL_TOKEN,
        records_url=f"sqlite:///{tmp_path / 'calls.db'}",
        redis_url=redis_url,
        flows_dir=flows_dir,
        task_queue=f"server-test-{uuid.uuid4().hex[:8]}",
    )
    if settings is not None:
        base = replace(
            settings,
            telnyx_key=settings.telnyx_key or base.telnyx_key,
            records_url=base.records_url,
            flows_dir=flows_dir,
            task_queue=base.task_queue,
            redis_url=redis_url,
        )
    base = replace(base, **overrides)
    client = await connect_client(temporal_settings)
    options = StackOptions(
        port=0,
        watch=watch,
        run_worker=run_worker,
        voice_bus=voice_bus,
        voice_clock=voice_clock,
        out=_NullOut(),
    )
    async with ServerStack(base, client, options) as stack, aiohttp.ClientSession() as http:
        if watch:
            await until_watching(stack.context.library)
        yield Harness(stack, http, signer)


async def until_watching(library: FlowLibrary) -> None:
    """Until the watcher of ``library`` (just started) sees saves: one of its files is
    saved again, unchanged, until a reload replaces the set served (a reload with no
    change), instead of sleeping a while and hoping the watcher has started."""
    probe = next(p for p in sorted(library.root.glob("*.yaml")) if p.is_file())
    text = probe.read_text()
    before = library.flows

    def reloaded() -> bool:
        if library.flows is not before:
            return True
        probe.write_text(text)
        return False

    await wait_until(reloaded, interval=0.1, what=f"the watcher of {library.root} to notice a save")


class _NullOut:
    """Swallows the stack's terminal output (tests read what they need from the API)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, text: str) -> int:
        self.lines.append(text)
        return len(text)

    def flush(self) -> None:
        return None


async def read_sse(
    http: aiohttp.ClientSession, url: str, into: list[dict[str, Any]], ready: asyncio.Event
) -> None:
    """Collect the events of an SSE stream into ``into`` until cancelled."""
    async with http.get(url) as response:
        assert response.status == 200, await response.text()
        event: dict[str, str] = {}
        async for raw in response.content:
            line = raw.decode().rstrip("\n")
            if line.startswith(": connected"):
                ready.set()
            if not line:
                if "data" in event:
                    into.append(
                        {"id": event.get("id"), "event": event.get("event"), **json.loads(event["data"])}
                    )
                event = {}
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            event[name] = value
