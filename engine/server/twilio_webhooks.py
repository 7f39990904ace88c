"""``POST /webhooks/twilio/voice`` (a call arrives) and ``/webhooks/twilio/status`` (it ended).

The same path as Telnyx's TeXML requests (engine.server.webhooks): signature
→ parse → replay check → the call desk, which routes by trigger, records the
call and starts its workflow; the answer is TwiML, the same ``<Dial><Sip>``
to LiveKit (TwiML and TeXML share these verbs). Calls that came through
Twilio are named ``twilio`` to the desk, so a trigger with ``carrier: telnyx``
does not take them.
"""

from __future__ import annotations

import time
import urllib.parse

from aiohttp import web
from multidict import MultiDict
from twilio.request_validator import RequestValidator

from engine.server import texml
from engine.server.context import ServerContext, context_of
from engine.server.desk import CLAIM_SECONDS, CallNotTaken, Replayed
from engine.server.telnyx import WebhookRefused, call_id_for
from engine.server.twilio import parse_request, verify_signature
from engine.server.webhooks import (
    MAX_BODY,
    REPLAYED,
    answer_markup,
    json_error,
    refusal,
    xml_response,
)

CARRIER = "twilio"
VOICE_PATH = "/webhooks/twilio/voice"
STATUS_PATH = "/webhooks/twilio/status"


def add_routes(app: web.Application) -> None:
    for path in (VOICE_PATH, STATUS_PATH):
        app.router.add_post(path, twilio_webhook)
        app.router.add_get(path, twilio_webhook)


async def _signed_params(request: web.Request, ctx: ServerContext) -> tuple[MultiDict[str], str | None]:
    """The request's parameters once its signature checks out, and its claim key."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise WebhookRefused(413, "the body is too large for a Twilio webhook.", "too_large")
    body = await request.read()
    signed: MultiDict[str] = MultiDict()
    if request.method == "POST":
        try:
            signed = MultiDict(urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            raise WebhookRefused(400, "the form body is not UTF-8.", "malformed") from None
    everything = MultiDict(request.query)
    everything.extend(signed)
    token = ctx.settings.twilio_auth_token
    if token is None:
        if ctx.settings.allow_unsigned:
            return everything, None
        raise WebhookRefused(
            503,
            "Twilio webhooks are refused: set TWILIO_AUTH_TOKEN (or name a twilio "
            "connection in VOXFLOW_CONNECTIONS) so their signatures can be checked.",
            "no_key",
        )
    seen = str(request.url)
    public = ctx.settings.public_url
    urls = (f"{public}{request.path_qs}", seen) if public else (seen,)
    nonce = verify_signature(
        RequestValidator(token), urls, signed, request.headers, ctx.clock(), ctx.settings.tolerance
    )
    return everything, nonce


async def twilio_webhook(request: web.Request) -> web.Response:
    ctx = context_of(request)
    began = time.perf_counter()
    outcome = "ok"
    try:
        params, nonce = await _signed_params(request, ctx)
        call = parse_request(params, ctx.settings.twilio_account_sid)
        desk = ctx.desk
        incoming = not call.recording_url and not call.ended
        if not incoming and nonce is not None and not await ctx.records.claim(nonce, CLAIM_SECONDS):
            raise REPLAYED
        if call.recording_url:
            await desk.recording_saved(call.call_sid, call.recording_url)
            outcome = "recording"
            return xml_response(texml.empty())
        if call.ended:
            try:
                await desk.hung_up(call.call_sid, call.call_status)
            except CallNotTaken as problem:
                outcome = "unavailable"
                return json_error(503, str(problem), "unavailable")
            outcome = "ended"
            return xml_response(texml.empty())
        if request.path == STATUS_PATH:
            outcome = "progress"  # ringing, in-progress...: nothing to do
            return xml_response(texml.empty())
        try:
            answer = await desk.incoming(
                call.call_sid, call.caller, call.called, claim=nonce, carrier=CARRIER
            )
        except Replayed:
            raise REPLAYED from None
        except CallNotTaken as problem:
            ctx.metrics.errors.labels("temporal_unavailable").inc()
            outcome = "unavailable"
            answer = await desk.could_not_start(call_id_for(call.call_sid), str(problem))
        outcome = answer.kind if outcome == "ok" else outcome
        return xml_response(answer_markup(ctx, answer, STATUS_PATH))
    except WebhookRefused as refused:
        outcome = refused.reason
        return refusal(ctx, refused, "Twilio webhook", "webhook")
    finally:
        ctx.metrics.webhook_duration.labels("twilio", outcome).observe(time.perf_counter() - began)
