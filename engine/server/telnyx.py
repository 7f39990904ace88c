"""Telnyx webhooks: the Ed25519 signature, and what the deliveries say.

Telnyx signs every webhook (Call Control v2 JSON events and TeXML requests
alike) with the account's Ed25519 key: the header ``telnyx-signature-ed25519``
is the base64 signature of ``f"{telnyx-timestamp}|{raw body}"``, and
``telnyx-timestamp`` is Unix seconds. A delivery is accepted when the
signature verifies against the account's public key (``TELNYX_PUBLIC_KEY``,
base64 as Mission Control shows it, or PEM) and the timestamp is within the
tolerance (300 s) of our clock. Replays inside that window are caught by the
server remembering each signature it accepted (engine.server.records claims).

Everything here is pure: parsing never raises anything but
:class:`WebhookRefused`, whose ``status`` and words become the HTTP answer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from engine.core.errors import VoxflowError

SIGNATURE_HEADER = "telnyx-signature-ed25519"
TIMESTAMP_HEADER = "telnyx-timestamp"
TOLERANCE_SECONDS = 300.0
# TeXML CallStatus values that mean the call is over (status callbacks).
TEXML_ENDED = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})


class WebhookRefused(Exception):
    """A delivery we will not act on: ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str, reason: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason  # a short label for metrics: forged, stale, malformed, ...


def load_public_key(text: str) -> VerifyKey:
    """The account's public key: base64 of the 32 raw bytes (as Telnyx shows it), or PEM.

    Signatures are checked with libsodium (PyNaCl, as Telnyx's own SDK does):
    about twice as fast as OpenSSL's Ed25519 here (0.05 ms against 0.10 ms),
    and the check is on the path where a caller waits for the TeXML answer.
    """
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode())
            if not isinstance(key, Ed25519PublicKey):
                raise ValueError("not an Ed25519 key")
            raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        else:
            raw = base64.b64decode(text, validate=True)
        if len(raw) != 32:
            raise ValueError(f"{len(raw)} bytes instead of 32")
        return VerifyKey(raw)
    except (ValueError, binascii.Error) as error:
        raise VoxflowError(
            f"TELNYX_PUBLIC_KEY is not an Ed25519 public key ({error}). Copy it from Telnyx "
            "Mission Control: Account Settings → Keys & Credentials → Public Key."
        ) from None


@dataclass(frozen=True)
class VerifiedDelivery:
    """A delivery whose signature checked out; ``nonce`` identifies this exact signature."""

    timestamp: int
    nonce: str


def verify_signature(
    key: VerifyKey,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    tolerance: float = TOLERANCE_SECONDS,
) -> VerifiedDelivery:
    signature_text = headers.get(SIGNATURE_HEADER, "").strip()
    timestamp_text = headers.get(TIMESTAMP_HEADER, "").strip()
    if not signature_text or not timestamp_text:
        raise WebhookRefused(
            401,
            f"the request is not signed: the headers {SIGNATURE_HEADER} and {TIMESTAMP_HEADER} are required.",
            "unsigned",
        )
    # Unix seconds: ten digits until the year 2286. More digits than that is not a
    # time (and a 400-digit number is too large to compare with our clock).
    if not (timestamp_text.isascii() and timestamp_text.isdigit()) or len(timestamp_text) > 12:
        raise WebhookRefused(401, f"{TIMESTAMP_HEADER} must be Unix seconds.", "malformed")
    timestamp = int(timestamp_text)
    try:
        signature = base64.b64decode(signature_text.encode("ascii"), validate=True)
    except (ValueError, binascii.Error, UnicodeError):
        raise WebhookRefused(401, f"{SIGNATURE_HEADER} is not base64.", "malformed") from None
    try:
        key.verify(timestamp_text.encode() + b"|" + body, signature)
    except (BadSignatureError, ValueError):  # ValueError: not 64 bytes long
        raise WebhookRefused(
            401,
            "the signature does not match this request and the configured TELNYX_PUBLIC_KEY.",
            "forged",
        ) from None
    # Checked after the signature, so a forger learns nothing about our clock.
    if abs(now - timestamp) > tolerance:
        raise WebhookRefused(
            401,
            f"the request was signed {abs(now - timestamp):.0f} s away from our clock; "
            f"at most {tolerance:.0f} s is accepted (a replay, or a clock that is off).",
            "stale",
        )
    return VerifiedDelivery(timestamp, hashlib.sha256(signature).hexdigest())


# The longest text voxflow keeps from a delivery (ids, numbers, names, URLs).
MAX_TEXT = 2048


@dataclass(frozen=True)
class CallData:
    """What Telnyx tells about the caller besides the number (kept as call variables)."""

    caller_id_name: str = ""  # CNAM / SIP display name: TeXML ``CallerId``, CC ``caller_id_name``
    attestation: str = ""  # STIR/SHAKEN: "A", "B" or "C" (ShakenStirAttestation)
    verified: bool | None = None  # ShakenStirValidated: the signature on the caller ID checked

    def variables(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if self.caller_id_name:
            values["caller_id_name"] = self.caller_id_name
        if self.attestation:
            values["caller_attestation"] = self.attestation
        if self.verified is not None:
            values["caller_verified"] = self.verified
        return values


@dataclass(frozen=True)
class CallControlEvent:
    """A Call Control v2 event (``data.event_type``...), reduced to what voxflow uses."""

    event_id: str
    event_type: str
    occurred_at: str
    call_control_id: str
    call_session_id: str
    caller: str
    called: str
    direction: str
    payload: dict[str, Any] = field(default_factory=dict)
    call_leg_id: str = ""
    recording_id: str = ""
    caller_data: CallData = field(default_factory=CallData)

    @property
    def telnyx_call_id(self) -> str:
        return self.call_control_id

    def text(self, name: str) -> str:
        """A text field of the payload ('' when absent or not text)."""
        return _text(self.payload.get(name))


# Call events that name a call without its call_control_id (Telnyx's documented
# call.recording.saved has only call_session_id and call_leg_id).
_NO_CONTROL_ID = frozenset(
    {"call.recording.saved", "call.recording.error", "call.recording.transcription.saved"}
)


def parse_call_event(body: bytes) -> CallControlEvent:
    """Parse a Call Control v2 webhook body; WebhookRefused(400) when it is not one."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise WebhookRefused(400, "the body is not JSON (or nests too deeply).", "malformed") from None
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, dict):
        raise WebhookRefused(400, "expected a Telnyx event: a JSON object with 'data'.", "malformed")
    payload = data.get("payload")
    event_type, event_id = _field(data, "event_type"), _field(data, "id")
    if not event_type or not event_id:
        raise WebhookRefused(400, "the event has no 'data.event_type' or 'data.id'.", "malformed")
    if not isinstance(payload, dict):
        raise WebhookRefused(400, "the event has no 'data.payload' object.", "malformed")
    call_control_id = _field(payload, "call_control_id")
    session_id, leg_id = _field(payload, "call_session_id"), _field(payload, "call_leg_id")
    if event_type.startswith("call.") and not call_control_id:
        if event_type not in _NO_CONTROL_ID or not (session_id or leg_id):
            raise WebhookRefused(400, "the call event has no 'payload.call_control_id'.", "malformed")
    verified = payload.get("shaken_stir_validated")
    return CallControlEvent(
        event_id=event_id,
        event_type=event_type,
        occurred_at=_field(data, "occurred_at"),
        call_control_id=call_control_id,
        call_session_id=session_id,
        caller=_field(payload, "from"),
        called=_field(payload, "to"),
        direction=_field(payload, "direction"),
        payload=payload,
        call_leg_id=leg_id,
        recording_id=_field(payload, "recording_id"),
        caller_data=CallData(
            caller_id_name=_field(payload, "caller_id_name"),
            attestation=_field(payload, "shaken_stir_attestation"),
            verified=verified if isinstance(verified, bool) else None,
        ),
    )


# What a TeXML request is. Telnyx sends all of them to the URLs of the TeXML
# application: the instruction fetch (a call arrived: answer it with TeXML), the
# call progress events (``CallbackSource=call-progress-events``, CallStatus
# initiated / ringing / in-progress / completed...) and the recording status
# callbacks (``RecordingStatus``, ``RecordingSid``, ``RecordingUrl``).
INSTRUCTIONS = "instructions"
STATUS = "status"
RECORDING = "recording"


@dataclass(frozen=True)
class TexmlRequest:
    """What Telnyx sends when it asks for TeXML (or reports a TeXML call's status)."""

    call_sid: str
    caller: str
    called: str
    call_status: str
    params: dict[str, str] = field(default_factory=dict)
    caller_data: CallData = field(default_factory=CallData)

    @property
    def kind(self) -> str:
        params = self.params
        if params.get("RecordingStatus") or params.get("RecordingSid"):
            return RECORDING
        if params.get("CallbackSource") or params.get("SequenceNumber") or self.ended:
            return STATUS
        if params.get("RecordingUrl"):
            return RECORDING
        return INSTRUCTIONS

    @property
    def ended(self) -> bool:
        return self.call_status.lower() in TEXML_ENDED

    @property
    def answered(self) -> bool:
        return self.call_status.lower() == "in-progress"

    @property
    def recording_url(self) -> str | None:
        return self.params.get("RecordingUrl") or None

    @property
    def recording_id(self) -> str:
        return self.params.get("RecordingSid", "")

    @property
    def session_id(self) -> str:
        return self.params.get("CallSessionId", "")

    @property
    def leg_id(self) -> str:
        return self.params.get("CallLegId", "")

    @property
    def hangup_cause(self) -> str:
        return self.params.get("HangupCause") or self.call_status


def parse_texml_params(params: Mapping[str, str]) -> TexmlRequest:
    clean = {str(k): str(v) for k, v in params.items()}
    for name, value in clean.items():
        if not _acceptable(name) or not _acceptable(value):
            raise WebhookRefused(
                400,
                f"the TeXML parameter {name[:40]!r} is not text voxflow "
                "can keep (too long, a NUL, or not UTF-8).",
                "malformed",
            )
    call_sid = clean.get("CallSid", "").strip()
    if not call_sid:
        raise WebhookRefused(400, "a TeXML request needs CallSid (and From, To).", "malformed")
    verified = clean.get("ShakenStirValidated", "").strip().lower()
    return TexmlRequest(
        call_sid=call_sid,
        caller=clean.get("From", "").strip(),
        called=clean.get("To", "").strip(),
        call_status=clean.get("CallStatus", "").strip(),
        params=clean,
        caller_data=CallData(
            caller_id_name=(clean.get("CallerId") or clean.get("CallerName") or "").strip(),
            attestation=clean.get("ShakenStirAttestation", "").strip(),
            verified={"true": True, "false": False}.get(verified),
        ),
    )


def call_id_for(telnyx_call_id: str) -> str:
    """voxflow's id of a Telnyx call: the same on every replica, safe in a SIP URI and room name.

    Telnyx ids look like ``v3:9X2vx...`` (a colon is not allowed in a SIP user
    part), so the id is a hash: 24 hex digits.
    """
    return hashlib.sha256(telnyx_call_id.encode("utf-8")).hexdigest()[:24]


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) and _acceptable(value) else ""


def _field(document: Mapping[str, Any], name: str) -> str:
    """A text field voxflow keeps: WebhookRefused(400) when it is there but unusable.

    JSON may carry what no database takes: a lone surrogate (``\\ud800``, which
    is not UTF-8), a NUL (PostgreSQL refuses it), or a text as long as the body.
    """
    value = document.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        if isinstance(value, (int, float)) and not isinstance(value, bool) and name == "id":
            return str(value)
        raise WebhookRefused(400, f"'{name}' must be text.", "malformed")
    if not _acceptable(value):
        raise WebhookRefused(
            400, f"'{name}' is not text voxflow can keep (too long, a NUL, or not UTF-8).", "malformed"
        )
    return value.strip()


def _acceptable(text: str) -> bool:
    if len(text) > MAX_TEXT or "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
