"""Twilio webhooks: the ``X-Twilio-Signature``, and what the requests say.

Twilio signs each webhook with the account's Auth Token: HMAC-SHA1 over the
full URL it requested followed by every form parameter (name then value,
sorted by name), base64 in ``X-Twilio-Signature``; the ``twilio`` SDK's
:class:`~twilio.request_validator.RequestValidator` checks it (with and
without the port, as Twilio's own servers differ). A webhook signed with a
SharedKey names HMAC_SHA256 in ``X-Twilio-Webhooks-Signature-Settings``.

The URL is the one Twilio requested, which behind a proxy is not the one
this server sees: with ``VOXFLOW_PUBLIC_URL`` set, that is the URL checked.

A signature has no time in it. Status callbacks carry Twilio's
``Timestamp``, which must be within the tolerance of our clock (stale
otherwise); an exact request seen before is a replay (its signature is
claimed, as for Telnyx); and a voice request for a call that already ended is
answered with a rejection, whenever it comes.

Parsing never raises anything but :class:`~engine.server.telnyx.WebhookRefused`.
"""

from __future__ import annotations

import email.utils
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from multidict import MultiDict
from twilio.request_validator import RequestValidator, get_signature_algorithm

from engine.server.telnyx import TOLERANCE_SECONDS, WebhookRefused

SIGNATURE_HEADER = "X-Twilio-Signature"
SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"
# CallStatus values that mean the call is over.
ENDED = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})


def verify_signature(
    validator: RequestValidator,
    urls: tuple[str, ...],
    params: MultiDict[str],
    headers: Mapping[str, str],
    now: float,
    tolerance: float = TOLERANCE_SECONDS,
) -> str:
    """The request's claim key (a hash of its signature) once it verifies; else WebhookRefused.

    ``urls``: the URLs Twilio may have signed (the public one first).
    """
    signature = headers.get(SIGNATURE_HEADER, "").strip()
    if not signature:
        raise WebhookRefused(
            401, f"the request is not signed: the header {SIGNATURE_HEADER} is required.", "unsigned"
        )
    algorithm = get_signature_algorithm(headers.get(SETTINGS_HEADER, ""))
    if not any(validator.validate(url, params, signature, algorithm) for url in urls):
        raise WebhookRefused(
            401,
            "the signature does not match this request and the configured "
            "TWILIO_AUTH_TOKEN (if a proxy is in front of the server, set VOXFLOW_PUBLIC_URL "
            "to the address Twilio calls).",
            "forged",
        )
    stamp = params.get("Timestamp")
    if stamp:  # status callbacks say when they were sent; checked after the signature
        try:
            sent = email.utils.parsedate_to_datetime(stamp).timestamp()
        except (TypeError, ValueError):
            raise WebhookRefused(400, "the Timestamp parameter is not a date.", "malformed") from None
        if abs(now - sent) > tolerance:
            raise WebhookRefused(
                401,
                f"the request was sent {abs(now - sent):.0f} s away from our clock; at "
                f"most {tolerance:.0f} s is accepted (a replay, or a clock that is off).",
                "stale",
            )
    return "twsig:" + hashlib.sha256(signature.encode()).hexdigest()


@dataclass(frozen=True)
class TwilioRequest:
    """A voice request or status callback: Twilio's documented parameters voxflow uses."""

    call_sid: str
    account_sid: str
    caller: str
    called: str
    call_status: str
    direction: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def ended(self) -> bool:
        return self.call_status.lower() in ENDED

    @property
    def recording_url(self) -> str | None:
        return self.params.get("RecordingUrl") or None


def parse_request(params: Mapping[str, str], account_sid: str | None = None) -> TwilioRequest:
    call_sid = (params.get("CallSid") or "").strip()
    if not call_sid:
        raise WebhookRefused(400, "a Twilio voice request needs CallSid (and From, To).", "malformed")
    account = (params.get("AccountSid") or "").strip()
    if account_sid and account and account != account_sid:
        raise WebhookRefused(
            403,
            f"the request is for the Twilio account {account}, not this server's (TWILIO_ACCOUNT_SID).",
            "other_account",
        )
    return TwilioRequest(
        call_sid=call_sid,
        account_sid=account,
        caller=(params.get("From") or "").strip(),
        called=(params.get("To") or params.get("Called") or "").strip(),
        call_status=(params.get("CallStatus") or "").strip(),
        direction=(params.get("Direction") or "").strip(),
        params=dict(params),
    )
