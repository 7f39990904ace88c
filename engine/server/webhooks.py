"""``POST /webhooks/telnyx`` (Call Control v2 events) and ``/webhooks/telnyx/texml`` (TeXML).

Each delivery goes: signature and timestamp → parse → "have we seen this
exact signature?" (a replay: refused, 409) → "have we handled this event?"
(a second delivery: 200, not handled again) → act. Refusals answer with a
JSON error and a 4xx; a temporary problem (Temporal down) with 503 so that
Telnyx tries again; nothing a sender puts in a body gives a 500.
"""

from __future__ import annotations

import logging
import time
import urllib.parse
from collections.abc import Mapping

from aiohttp import web

from engine.server import texml
from engine.server.context import ServerContext, context_of
from engine.server.desk import CLAIM_SECONDS, Answer, CallNotTaken, Replayed
from engine.server.telnyx import (
    CALL_EVENTS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    CallControlEvent,
    WebhookRefused,
    call_id_for,
    parse_call_event,
    parse_texml_params,
    verify_signature,
)

log = logging.getLogger(__name__)
EVENT_CLAIM_SECONDS = 24 * 3600.0  # Telnyx and LiveKit retry for far less than a day
MAX_BODY = 256 * 1024


def json_error(status: int, message: str, reason: str = "") -> web.Response:
    body = {"error": message}
    if reason:
        body["reason"] = reason
    return web.json_response(body, status=status)


def refusal(ctx: ServerContext, refused: WebhookRefused, what: str, metric: str) -> web.Response:
    """Count, log and answer a refused delivery (``what``: "Telnyx webhook", ...)."""
    ctx.metrics.errors.labels(f"{metric}_{refused.reason}").inc()
    log.warning("%s refused (%s): %s", what, refused.reason, refused.message)
    return json_error(refused.status, refused.message, refused.reason)


async def _verified_body(request: web.Request, ctx: ServerContext,
                         claim: bool = True) -> tuple[bytes, str | None]:
    """The raw body once the signature checks out, and the signature's claim key.

    With ``claim`` the signature is also claimed here (a replay: 409); without,
    the caller claims the key itself (in the same transaction as its own write).
    """
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise WebhookRefused(413, "the body is too large for a Telnyx webhook.", "too_large")
    body = await request.read()
    headers = {SIGNATURE_HEADER: request.headers.get(SIGNATURE_HEADER, ""),
               TIMESTAMP_HEADER: request.headers.get(TIMESTAMP_HEADER, "")}
    key = ctx.settings.telnyx_key
    if key is None:
        if ctx.settings.allow_unsigned:
            return body, None
        raise WebhookRefused(
            503, "webhooks are refused: set TELNYX_PUBLIC_KEY to the public key of your Telnyx "
            "account so their signatures can be checked.", "no_key",
        )
    delivery = verify_signature(key, headers, body, ctx.clock(), ctx.settings.tolerance)
    nonce = f"sig:{delivery.nonce}"
    # Remembered for longer than the tolerance: a replay is refused until it is stale anyway.
    if claim and not await ctx.records.claim(nonce, CLAIM_SECONDS):
        raise REPLAYED
    return body, nonce


REPLAYED = WebhookRefused(409, "this exact request was received before (a replay).", "replayed")


async def telnyx_events(request: web.Request) -> web.Response:
    ctx = context_of(request)
    began = time.perf_counter()
    outcome = "ok"
    try:
        event = parse_call_event((await _verified_body(request, ctx))[0])
        claim = f"event:{event.event_id}"
        if not await ctx.records.claim(claim, EVENT_CLAIM_SECONDS):
            outcome = "duplicate"
            return web.json_response({"status": "duplicate", "event_id": event.event_id})
        try:
            result = await _act_on(ctx, event)
        except CallNotTaken as problem:
            await ctx.records.release(claim)  # so Telnyx's next delivery is handled
            outcome = "unavailable"
            ctx.metrics.errors.labels("temporal_unavailable").inc()
            return json_error(503, str(problem), "unavailable")
        return web.json_response({"status": result, "event_id": event.event_id,
                                  "call_id": call_id_for(event.telnyx_call_id)
                                  if event.telnyx_call_id else None})
    except WebhookRefused as refused:
        outcome = refused.reason
        return refusal(ctx, refused, "Telnyx webhook", "webhook")
    finally:
        ctx.metrics.webhook_duration.labels("events", outcome).observe(time.perf_counter() - began)


async def _act_on(ctx: ServerContext, event: CallControlEvent) -> str:
    desk = ctx.desk
    kind = event.event_type
    if kind not in CALL_EVENTS:
        return "ignored"
    if kind == "call.initiated":
        if event.direction and event.direction != "incoming":
            return "ignored"  # calls voxflow places itself are not inbound calls to route
        answer = await desk.incoming(event.telnyx_call_id, event.caller, event.called)
        return f"taken: {answer.kind}"
    if kind == "call.answered":
        await desk.answered(event.telnyx_call_id)
        return "answered"
    if kind == "call.hangup":
        return await desk.hung_up(event.telnyx_call_id,
                                  str(event.payload.get("hangup_cause") or ""))
    if kind == "call.dtmf.received":
        await desk.dtmf(event.telnyx_call_id, str(event.payload.get("digit") or ""))
        return "noted"
    urls = event.payload.get("recording_urls") or event.payload.get("public_recording_urls")
    if isinstance(urls, Mapping):
        url = urls.get("mp3") or urls.get("wav")
        if isinstance(url, str) and url:
            await desk.recording_saved(event.telnyx_call_id, url)
            return "recording saved"
    return "ignored"


async def telnyx_texml(request: web.Request) -> web.Response:
    ctx = context_of(request)
    began = time.perf_counter()
    outcome = "ok"
    try:
        body, nonce = await _verified_body(request, ctx, claim=False)
        if request.method == "POST":
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                raise WebhookRefused(400, "the form body is not UTF-8.", "malformed") from None
            params = dict(urllib.parse.parse_qsl(text, keep_blank_values=True))
        else:
            params = dict(request.query)
        texml_request = parse_texml_params(params)
        desk = ctx.desk
        incoming = not texml_request.recording_url and not texml_request.ended
        if not incoming and nonce is not None and not await ctx.records.claim(nonce,
                                                                              CLAIM_SECONDS):
            raise REPLAYED
        if texml_request.recording_url:
            await desk.recording_saved(texml_request.call_sid, texml_request.recording_url)
            outcome = "recording"
            return _xml(texml.empty())
        if texml_request.ended:
            try:
                await desk.hung_up(texml_request.call_sid, texml_request.call_status)
            except CallNotTaken as problem:
                outcome = "unavailable"
                return json_error(503, str(problem), "unavailable")
            outcome = "ended"
            return _xml(texml.empty())
        try:
            answer = await desk.incoming(texml_request.call_sid, texml_request.caller,
                                         texml_request.called, claim=nonce)
        except Replayed:
            raise REPLAYED from None
        except CallNotTaken as problem:
            # A caller is waiting on the line: an apology beats silence.
            ctx.metrics.errors.labels("temporal_unavailable").inc()
            outcome = "unavailable"
            answer = await desk.could_not_start(call_id_for(texml_request.call_sid), str(problem))
        outcome = answer.kind if outcome == "ok" else outcome
        return _xml(_texml_for(ctx, answer))
    except WebhookRefused as refused:
        outcome = refused.reason
        return refusal(ctx, refused, "Telnyx TeXML request", "webhook")
    finally:
        ctx.metrics.webhook_duration.labels("texml", outcome).observe(time.perf_counter() - began)


def _texml_for(ctx: ServerContext, answer: Answer) -> str:
    if answer.kind == "dial":
        # Telnyx records only when it can tell us where the recording is (VOXFLOW_PUBLIC_URL).
        public = ctx.settings.public_url
        return texml.dial_sip(
            answer.call_id, ctx.settings.sip_host, record=answer.record and public is not None,
            recording_callback=f"{public}/webhooks/telnyx/texml" if public else None,
            username=ctx.settings.sip_username, password=ctx.settings.sip_password,
        )
    if answer.kind == "message":
        return texml.say_and_hang_up(answer.message, answer.language)
    return texml.reject()


def _xml(text: str) -> web.Response:
    return web.Response(text=text, content_type=texml.CONTENT_TYPE)
