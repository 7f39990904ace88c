"""``POST /webhooks/telnyx`` (Call Control v2 events) and ``/webhooks/telnyx/texml`` (TeXML).

Each delivery goes: signature and timestamp → parse → "have we seen this
exact signature?" (a replay: refused, 409) → "have we handled this event?"
(a second delivery: 200, not handled again) → act. Refusals answer with a
JSON error and a 4xx; a temporary problem (Temporal down) with 503 so that
Telnyx tries again; nothing a sender puts in a body gives a 500.
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.parse
from collections.abc import Mapping

from aiohttp import web

from engine.server import texml
from engine.server.context import ServerContext, context_of
from engine.server.desk import CLAIM_SECONDS, Answer, CallNotTaken, Replayed
from engine.server.telnyx import (
    INSTRUCTIONS,
    MAX_TEXT,
    RECORDING,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    CallControlEvent,
    TexmlRequest,
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


async def _verified_body(
    request: web.Request, ctx: ServerContext, claim: bool = True
) -> tuple[bytes, str | None]:
    """The raw body once the signature checks out, and the signature's claim key.

    With ``claim`` the signature is also claimed here (a replay: 409); without,
    the caller claims the key itself (in the same transaction as its own write).
    """
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise WebhookRefused(413, "the body is too large for a Telnyx webhook.", "too_large")
    body = await request.read()
    headers = {
        SIGNATURE_HEADER: request.headers.get(SIGNATURE_HEADER, ""),
        TIMESTAMP_HEADER: request.headers.get(TIMESTAMP_HEADER, ""),
    }
    key = ctx.settings.telnyx_key
    if key is None:
        if ctx.settings.allow_unsigned:
            return body, None
        raise WebhookRefused(
            503,
            "webhooks are refused: set TELNYX_PUBLIC_KEY to the public key of your Telnyx "
            "account so their signatures can be checked.",
            "no_key",
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
        # Held while this delivery works on the event, then kept for a day: a second
        # delivery of a handled event is acknowledged; one that comes while the first is
        # at work (or after it died mid-way: a killed server) is asked to come back.
        claim = f"event:{event.event_id}"
        state = await ctx.records.lease(claim, ctx.settings.event_lease)
        if state == "done":
            outcome = "duplicate"
            return web.json_response({"status": "duplicate", "event_id": event.event_id})
        if state == "pending":
            outcome = "pending"
            response = json_error(
                503, "this event is being handled by an earlier delivery; try again shortly.", "pending"
            )
            response.headers["Retry-After"] = str(int(ctx.settings.event_lease) + 1)
            return response
        try:
            result = await _act_on(ctx, event)
        except CallNotTaken as problem:
            await _release(ctx, claim)  # so Telnyx's next delivery is handled
            outcome = "unavailable"
            ctx.metrics.errors.labels("temporal_unavailable").inc()
            return json_error(503, str(problem), "unavailable")
        except BaseException:
            await _release(ctx, claim)
            raise
        await ctx.records.settle(claim, EVENT_CLAIM_SECONDS)
        return web.json_response(
            {
                "status": result,
                "event_id": event.event_id,
                "call_id": call_id_for(event.telnyx_call_id) if event.telnyx_call_id else None,
            }
        )
    except WebhookRefused as refused:
        outcome = refused.reason
        return refusal(ctx, refused, "Telnyx webhook", "webhook")
    finally:
        ctx.metrics.webhook_duration.labels("events", outcome).observe(time.perf_counter() - began)


async def _release(ctx: ServerContext, claim: str) -> None:
    try:
        await asyncio.shield(ctx.records.release(claim))
    except Exception as error:  # the database is what failed: the lease runs out instead
        log.warning(
            "the claim %s could not be released (%s); it lapses in %g s",
            claim,
            error,
            ctx.settings.event_lease,
        )


async def _act_on(ctx: ServerContext, event: CallControlEvent) -> str:
    desk = ctx.desk
    kind = event.event_type
    if kind == "call.initiated":
        if event.direction and event.direction != "incoming":
            return "ignored"  # calls voxflow places itself are not inbound calls to route
        return await desk.incoming_call_control(event)
    if kind == "call.answered":
        await desk.status(event.telnyx_call_id, session_id=event.call_session_id, leg_id=event.call_leg_id)
        await desk.answered(event.telnyx_call_id)
        return "answered"
    if kind == "call.hangup":
        return await desk.hung_up(event.telnyx_call_id, event.text("hangup_cause"))
    if kind == "call.dtmf.received":
        await desk.dtmf(event.telnyx_call_id, event.text("digit"))
        return "noted"
    if kind == "call.speak.ended":
        return await desk.speak_ended(event)
    if kind in ("call.recording.saved", "call.recording.started"):
        url = ""
        for name in ("recording_urls", "public_recording_urls"):
            urls = event.payload.get(name)
            if isinstance(urls, Mapping):
                url = _url(urls.get("mp3")) or _url(urls.get("wav"))
                if url:
                    break
        return await desk.recording(
            telnyx_call_id=event.call_control_id,
            session_id=event.call_session_id,
            leg_id=event.call_leg_id,
            recording_id=event.recording_id,
            url=url,
        )
    return "ignored"


def _url(value: object) -> str:
    """A recording's URL, if it is one (http or https): it ends up as a link on the monitor."""
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        return ""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return ""
    return value if value.lower().startswith(("https://", "http://")) else ""


async def telnyx_texml(request: web.Request) -> web.Response:
    ctx = context_of(request)
    began = time.perf_counter()
    outcome = "ok"
    try:
        if request.method != "POST" and ctx.settings.telnyx_key is not None:
            # Telnyx signs a delivery's body; a GET has none, so its query (the caller's
            # numbers, the call id) would not be covered by the signature at all.
            raise WebhookRefused(
                405,
                "TeXML over GET is not accepted: its query is not covered by Telnyx's "
                "signature. Set the TeXML application's voice method (and status callback "
                "method) to POST.",
                "get_refused",
            )
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
        kind = texml_request.kind
        if kind == INSTRUCTIONS:
            answer, outcome = await _instructions(ctx, texml_request, nonce)
            return xml_response(answer_markup(ctx, answer, "/webhooks/telnyx/texml"))
        if nonce is not None and not await ctx.records.claim(nonce, CLAIM_SECONDS):
            raise REPLAYED
        try:
            outcome = await _callback(ctx, texml_request)
        except CallNotTaken as problem:
            if nonce is not None:
                await _release(ctx, nonce)
            outcome = "unavailable"
            return json_error(503, str(problem), "unavailable")
        except BaseException:
            if nonce is not None:
                await _release(ctx, nonce)
            raise
        return xml_response(texml.empty())
    except WebhookRefused as refused:
        outcome = refused.reason
        response = refusal(ctx, refused, "Telnyx TeXML request", "webhook")
        if refused.status == 405:
            response.headers["Allow"] = "POST"
        return response
    finally:
        ctx.metrics.webhook_duration.labels("texml", outcome).observe(time.perf_counter() - began)


async def _instructions(
    ctx: ServerContext, texml_request: TexmlRequest, nonce: str | None
) -> tuple[Answer, str]:
    """A call arrived: route it, start its flow, and say how Telnyx should connect it."""
    try:
        answer = await ctx.desk.incoming(
            texml_request.call_sid,
            texml_request.caller,
            texml_request.called,
            claim=nonce,
            caller_data=texml_request.caller_data,
            session_id=texml_request.session_id,
            leg_id=texml_request.leg_id,
        )
    except Replayed:
        raise REPLAYED from None
    except CallNotTaken as problem:
        # A caller is waiting on the line: an apology beats silence.
        ctx.metrics.errors.labels("temporal_unavailable").inc()
        return await ctx.desk.could_not_start(
            call_id_for(texml_request.call_sid), str(problem)
        ), "unavailable"
    return answer, answer.kind


async def _callback(ctx: ServerContext, texml_request: TexmlRequest) -> str:
    """A status or recording callback: it updates the call it is about, never starts one."""
    desk = ctx.desk
    call_sid = texml_request.call_sid
    if texml_request.kind == RECORDING:
        url = _url(texml_request.recording_url)
        await desk.recording(telnyx_call_id=call_sid, recording_id=texml_request.recording_id, url=url)
        return "recording"
    await desk.status(call_sid, session_id=texml_request.session_id, leg_id=texml_request.leg_id)
    if texml_request.ended:
        # The completed callback carries the recording when the call was recorded.
        url = _url(texml_request.recording_url)
        if url:
            await desk.recording(telnyx_call_id=call_sid, url=url)
        await desk.hung_up(call_sid, texml_request.hangup_cause)
        return "ended"
    if texml_request.answered:
        await desk.answered(call_sid)
        return "answered"
    return "status"


def answer_markup(ctx: ServerContext, answer: Answer, recording_callback_path: str) -> str:
    """The TeXML (or TwiML: the same verbs) that carries out ``answer``; a recording is
    asked for only when the carrier can be told where to report it (VOXFLOW_PUBLIC_URL)."""
    if answer.kind == "dial":
        public = ctx.settings.public_url
        return texml.dial_sip(
            answer.call_id,
            ctx.settings.sip_host,
            record=answer.record and public is not None,
            recording_callback=f"{public}{recording_callback_path}" if public else None,
            username=ctx.settings.sip_username,
            password=ctx.settings.sip_password,
        )
    if answer.kind == "message":
        return texml.say_and_hang_up(answer.message, answer.language)
    return texml.reject()


def xml_response(text: str) -> web.Response:
    return web.Response(text=text, content_type=texml.CONTENT_TYPE)
