"""Fuzzing the server's routes as its OpenAPI document lists them: never a server error.

Every operation of ``/api/openapi.json`` (webhooks, API, event streams) gets
requests drawn by hypothesis: path parameters and query values of any text,
headers with bytes that are not UTF-8, tokens and cookies right and wrong,
Origins, and bodies that are random bytes, forms and JSON shaped like Telnyx's
(ids and numbers of any text: lone surrogates, NULs, deep nesting), signed with
the account's key often enough to reach the parsers and the call desk. The
requests are written on a raw socket, so nothing is cleaned on the way.

Checked for every request: the answer is not a 5xx (but the 503s the document
lists: a key not configured); and a Call Control event that was not handled (any
answer but 200) holds no claim, so Telnyx's next delivery of it is handled.
Bounded and derandomized: the same inputs each run.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.background_loop import BackgroundLoop
from tests.server.raw_http import raw_request
from tests.server.support import API_TOKEN, Harness, harness
from tests.server.telnyx_api_server import API_KEY, TelnyxApiServer

FUZZ = settings(
    deadline=None,
    max_examples=400,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
NUMBERS = ["+15550001000", "+15550002000", "+15550003000", "+15550006000", "+1555", ""]


class Server:
    def __init__(self, loop: BackgroundLoop, h: Harness, document: dict[str, Any]) -> None:
        self.loop = loop
        self.h = h
        self.document = document
        self.operations = sorted(
            (path, method.upper()) for path, item in document["paths"].items() for method in item
        )

    def responses(self, target: bytes, method: str) -> set[str]:
        path = target.split(b"?")[0].decode("utf-8", "replace").split("/")
        for template, item in self.document["paths"].items():
            parts = template.split("/")
            if len(parts) == len(path) and all(
                p.startswith("{") or p == q for p, q in zip(parts, path, strict=True)
            ):
                operation = item.get(method.lower(), {})
                return set(operation.get("responses", {}))
        return set()


@pytest.fixture(scope="module")
def server(temporal_settings: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    loop = BackgroundLoop()
    stack = contextlib.AsyncExitStack()
    tmp_path = tmp_path_factory.mktemp("fuzz")

    async def start() -> Harness:
        api = await stack.enter_async_context(TelnyxApiServer())
        h = await stack.enter_async_context(
            harness(
                temporal_settings,
                tmp_path,
                run_worker=False,
                telnyx_api_key=API_KEY,
                telnyx_api_url=api.url,
                number_lookup=False,
            )
        )
        return h

    h = loop.run(start())
    try:
        document = loop.run(h.api("/api/openapi.json", token=None))
        yield Server(loop, h, document)
    finally:
        loop.run(stack.aclose())
        loop.close()


_any_text = st.text(st.characters(exclude_categories=()), max_size=30)  # surrogates, NULs
_weird = st.one_of(
    _any_text,
    st.sampled_from(["\ud800", "\x00", "é", "v3:abc", "1" * 400, "+15550002000", "../../etc/passwd"]),
)


def _bytes_text(data: st.DataObject) -> bytes:
    """Header bytes: mostly what HTTP lets through to the application (printable ASCII and
    any byte from 0x80: not UTF-8, surrogates), now and then control bytes (refused by the
    HTTP parser itself), never CR or LF (which would end the header)."""
    raw = data.draw(
        st.one_of(st.binary(max_size=40), _any_text.map(lambda t: t.encode("utf-8", "surrogatepass")))
    )
    if data.draw(st.integers(0, 9)):
        raw = bytes(b for b in raw if b >= 0x20 and b != 0x7F)
    return raw.replace(b"\r", b"").replace(b"\n", b"")


def _json_value(depth: int) -> st.SearchStrategy[Any]:
    leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), _weird)
    if depth <= 0:
        return leaves
    return st.one_of(
        leaves,
        st.lists(_json_value(depth - 1), max_size=3),
        st.dictionaries(_weird, _json_value(depth - 1), max_size=3),
    )


@st.composite
def _event_body(draw: st.DrawFn) -> bytes:
    kind = draw(
        st.sampled_from(
            [
                "call.initiated",
                "call.answered",
                "call.hangup",
                "call.dtmf.received",
                "call.recording.saved",
                "call.speak.ended",
                "call.bridged",
                "fax.received",
            ]
        )
    )
    payload: dict[str, Any] = {}
    tidy = draw(st.booleans())  # half the events well formed: they reach the call desk
    for name in (
        "call_control_id",
        "call_session_id",
        "call_leg_id",
        "from",
        "to",
        "direction",
        "digit",
        "hangup_cause",
        "client_state",
        "recording_id",
        "caller_id_name",
        "shaken_stir_attestation",
    ):
        if draw(st.booleans()) or (tidy and name == "call_control_id"):
            sensible = st.sampled_from(
                NUMBERS
                + ["v3:fuzz-call-1", "v3:fuzz-call-2", "incoming", "outgoing", "1", "#", "normal_clearing"]
            )
            payload[name] = draw(
                sensible if tidy else st.one_of(sensible, sensible, sensible, _weird, _json_value(1))
            )
    if draw(st.booleans()):
        payload["recording_urls"] = {
            "mp3": draw(st.one_of(_weird, st.just("javascript:alert(1)"), st.just("https://r.example/a.mp3")))
        }
    data: Any = {
        "event_type": kind,
        "id": draw(
            st.uuids().map(str)
            if tidy
            else st.one_of(
                st.uuids().map(str), st.uuids().map(str), st.uuids().map(str), _weird, st.integers()
            )
        ),
        "payload": payload,
    }
    if not tidy and draw(st.integers(0, 4)) == 0:
        data = draw(_json_value(3))
    document: Any = {"data": data, "meta": {"attempt": draw(st.integers(1, 10**9))}}
    if draw(st.integers(0, 19)) == 0:
        nesting = draw(st.integers(100, 3000))
        return b'{"data": ' * nesting + b"1" + b"}" * nesting
    text = json.dumps(document, ensure_ascii=draw(st.booleans()))
    return text.encode("utf-8", "surrogatepass")


@st.composite
def _form_body(draw: st.DrawFn) -> bytes:
    fields: dict[str, str] = {}
    if draw(st.integers(0, 4)):
        fields["CallSid"] = draw(st.sampled_from(["v3:fuzz-call-3", "v3:fuzz-call-4"]))
    for name in (
        "CallSid",
        "From",
        "To",
        "CallStatus",
        "CallbackSource",
        "RecordingStatus",
        "RecordingSid",
        "RecordingUrl",
        "CallerId",
        "ShakenStirValidated",
        "CallSessionId",
        "HangupCause",
        "SequenceNumber",
    ):
        if draw(st.booleans()):
            sensible = st.sampled_from(
                NUMBERS
                + [
                    "completed",
                    "in-progress",
                    "ringing",
                    "call-progress-events",
                    "v3:fuzz-call-3",
                    "https://r.example/b.mp3",
                ]
            )
            fields[name] = draw(st.one_of(sensible, sensible, _weird))
    pairs = "&".join(
        f"{urllib.parse.quote(k)}={urllib.parse.quote(v, errors='surrogatepass')}" for k, v in fields.items()
    )
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=200))
    return pairs.encode()


@st.composite
def _request(
    draw: st.DrawFn, operations: list[tuple[str, str]]
) -> tuple[str, bytes, list[tuple[bytes, bytes]], bytes]:
    webhooks = [op for op in operations if op[0].startswith("/webhooks/telnyx") and op[1] == "POST"]
    path, method = draw(st.one_of(st.sampled_from(webhooks), st.sampled_from(operations)))
    target = path
    for name in [p.strip("{}") for p in path.split("/") if p.startswith("{")]:
        value = draw(_weird)
        target = target.replace(
            "{" + name + "}", urllib.parse.quote(value.encode("utf-8", "surrogatepass"), safe="")
        )
    query = draw(
        st.dictionaries(
            st.sampled_from(
                [
                    "token",
                    "limit",
                    "status",
                    "live",
                    "flow_id",
                    "call_id",
                    "after",
                    "CallSid",
                    "To",
                    "From",
                    "x",
                ]
            ),
            _weird,
            max_size=3,
        )
    )
    if draw(st.booleans()) and "token" not in query:
        query["token"] = API_TOKEN
    target_bytes = target.encode()
    if query:
        target_bytes += (
            b"?"
            + "&".join(
                f"{k}={urllib.parse.quote(v.encode('utf-8', 'surrogatepass'))}" for k, v in query.items()
            ).encode()
        )
    headers: list[tuple[bytes, bytes]] = []
    auth = draw(st.sampled_from(["none", "token", "bytes", "cookie", "cookie-bytes"]))
    if auth == "token":
        headers.append((b"Authorization", f"Bearer {API_TOKEN}".encode()))
    elif auth == "bytes":
        headers.append((b"Authorization", b"Bearer " + _bytes_text(draw(st.data()))))
    elif auth == "cookie":
        headers.append((b"Cookie", f"voxflow_token={API_TOKEN}".encode()))
    elif auth == "cookie-bytes":
        headers.append((b"Cookie", b"voxflow_token=" + _bytes_text(draw(st.data()))))
    if draw(st.integers(0, 9)) == 0:
        headers.append((b"Origin", _bytes_text(draw(st.data()))))
    if draw(st.integers(0, 9)) == 0:
        headers += [
            (b"Upgrade", b"websocket"),
            (b"Connection", b"Upgrade"),
            (b"Sec-WebSocket-Version", b"13"),
            (b"Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ=="),
        ]
    body = b""
    if method == "POST":
        if path == "/webhooks/telnyx":
            body = draw(_event_body())
        elif path == "/webhooks/telnyx/texml":
            body = draw(_form_body())
        else:
            body = draw(st.one_of(st.binary(max_size=200), _event_body()))
    return method, target_bytes, headers, body


def test_no_input_gives_a_server_error(server: Server) -> None:
    h = server.h
    signer = h.signer
    deliveries = itertools.count()

    @FUZZ
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        method, target, headers, body = data.draw(_request(server.operations))
        signing = data.draw(st.sampled_from(["signed"] * 7 + ["unsigned", "garbage", "huge-timestamp"]))
        if target.startswith(b"/webhooks/telnyx"):
            if signing == "signed":
                # Each delivery signed at its own second: the same body twice is Telnyx's
                # redelivery, not a replay of one request (a few are replays all the same).
                signed = signer.headers(body, int(time.time()) - next(deliveries) % 250)
                headers += [(k.encode(), v.encode()) for k, v in signed.items()]
            elif signing == "garbage":
                headers += [
                    (b"telnyx-signature-ed25519", _bytes_text(data)),
                    (b"telnyx-timestamp", _bytes_text(data)),
                ]
            elif signing == "huge-timestamp":
                headers += [(b"telnyx-signature-ed25519", b"A" * 88), (b"telnyx-timestamp", b"9" * 400)]
        if body:
            content_type = (
                b"application/json"
                if target.startswith(b"/webhooks/telnyx?") or target == b"/webhooks/telnyx"
                else b"application/x-www-form-urlencoded"
            )
            headers.append((b"Content-Type", content_type))
        status, answer = server.loop.run(raw_request(h.url, method, target, headers, body))
        # 503 only where the document says so (Temporal down, a key not configured).
        allowed = status < 500 or (status == 503 and "503" in server.responses(target, method))
        assert allowed, (method, target, headers, body[:300], status, answer[:300])
        if target.split(b"?")[0] == b"/webhooks/telnyx" and status != 200:
            event_id = _event_id(body)
            if event_id is not None:
                # Free (or "done" by an earlier delivery that was handled), never held.
                state = server.loop.run(h.ctx.records.lease(f"event:{event_id}", 0.001))
                assert state != "pending", (event_id, status, answer[:300])
                if state == "claimed":
                    server.loop.run(h.ctx.records.release(f"event:{event_id}"))

    check()
    metrics = server.loop.run(h.api("/metrics", token=None))
    assert 'voxflow_errors_total{kind="server"}' not in metrics


def _event_id(body: bytes) -> str | None:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    data = document.get("data") if isinstance(document, dict) else None
    value = data.get("id") if isinstance(data, dict) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return None
        return value.strip() or None
    return None
