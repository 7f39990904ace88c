"""``POST /webhooks/livekit``: LiveKit tells us the voice agent left a call's room.

An agent process that stops cleanly says ``call:agent_left`` on the voice bus
itself; one that dies (killed, out of memory, its machine gone) cannot, and the
call would only notice through its own timeouts. LiveKit notices at once: its
``participant_left`` webhook for the agent's participant is turned into that
``call:agent_left`` here, so the call waits for a new agent (and resumes) or,
with none within 10 s, ends with the apology (engine.voice.channel_base).

LiveKit does not send a new agent by itself: a job whose process died stays
failed. So, with LIVEKIT_URL set, the server then asks LiveKit for a new
dispatch of the agent ``voxflow`` to the call's room (AgentDispatchService
CreateDispatch); a worker takes it, its agent joins, announces itself on the
bus and the call asks its question again.

A delivery is acted on when all of this holds; anything else is answered 200
and ignored:

- ``participant_left`` (or ``participant_connection_aborted``) in a room
  ``call-<id>`` (engine.agent.rooms);
- the participant is an agent (kind AGENT) dispatched as ``voxflow`` (its
  ``lk.agent.name`` attribute, when LiveKit sends it);
- it did not leave because the room was deleted or closed (the call is over);
- the call's record says the call is still going on;
- the bus says this agent is the one serving the call and it has not said
  goodbye itself (a replacement already announced itself, or it left cleanly);
- the event was not handled before (LiveKit retries; the event id is claimed).

Verification is LiveKit's own: the ``Authorization`` header is a JWT signed
(HS256) with the API secret, issued by the API key, whose ``sha256`` claim is
the base64 SHA-256 of the raw body (livekit-api's TokenVerifier checks the
token; the hash is compared here). Refusals are JSON errors: 401 for a missing
or wrong signature, 400 for a body that is not a webhook event, 503 when
LIVEKIT_API_KEY / LIVEKIT_API_SECRET are not set.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import time

import aiohttp
from aiohttp import web
from google.protobuf.json_format import Parse, ParseError
from livekit.api import CreateAgentDispatchRequest, LiveKitAPI, TokenVerifier
from livekit.protocol.models import DisconnectReason, ParticipantInfo
from livekit.protocol.webhook import WebhookEvent

from engine.agent.rooms import AGENT_NAME, AGENT_NAME_ATTRIBUTE, call_id_from_room
from engine.server.context import ServerContext, context_of
from engine.server.records import FINAL_STATUSES
from engine.server.telnyx import WebhookRefused
from engine.server.webhooks import EVENT_CLAIM_SECONDS, MAX_BODY, refusal
from engine.voice.messages import AgentLeft
from engine.voice.simulated_agent import AGENT_STATE_OWNER

log = logging.getLogger(__name__)
LEFT_EVENTS = frozenset({"participant_left", "participant_connection_aborted"})
# The room is gone: the call ended with it, the agent did not die in the middle of it.
_CALL_OVER = frozenset({DisconnectReason.ROOM_DELETED, DisconnectReason.ROOM_CLOSED})


async def livekit_events(request: web.Request) -> web.Response:
    ctx = context_of(request)
    began = time.perf_counter()
    outcome = "ok"
    try:
        event = await _verified_event(request, ctx)
        result = await _act_on(ctx, event)
        outcome = "ok" if result == "agent left" else "ignored"
        return web.json_response({"status": result, "event": event.event, "id": event.id})
    except WebhookRefused as refused:
        outcome = refused.reason
        return refusal(ctx, refused, "LiveKit webhook", "livekit_webhook")
    finally:
        ctx.metrics.webhook_duration.labels("livekit", outcome).observe(time.perf_counter() - began)


async def _verified_event(request: web.Request, ctx: ServerContext) -> WebhookEvent:
    key, secret = ctx.settings.livekit_api_key, ctx.settings.livekit_api_secret
    if not key or not secret:
        raise WebhookRefused(
            503,
            "LiveKit webhooks are refused: set LIVEKIT_API_KEY and LIVEKIT_API_SECRET on "
            "the server to the key LiveKit signs its webhooks with (webhook: api_key: in "
            "LiveKit's config) so their signatures can be checked.",
            "no_key",
        )
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise WebhookRefused(413, "the body is too large for a LiveKit webhook.", "too_large")
    body = await request.read()
    token = request.headers.get("Authorization", "").strip()
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    if not token:
        raise WebhookRefused(
            401,
            "the webhook is not signed: LiveKit sends a signed token in the Authorization header.",
            "unsigned",
        )
    try:
        claims = TokenVerifier(key, secret).verify(token)
    except Exception as error:  # noqa: BLE001 - whatever is wrong with a token, it is refused
        raise WebhookRefused(
            401,
            f"the webhook's signature does not check out ({error}); is "
            "LIVEKIT_API_SECRET the secret of the key in LiveKit's webhook "
            "settings?",
            "forged",
        ) from None
    try:
        signed_hash = base64.b64decode(claims.sha256 or "", validate=True)
    except (binascii.Error, ValueError):
        signed_hash = b""
    if not signed_hash or not hmac.compare_digest(signed_hash, hashlib.sha256(body).digest()):
        raise WebhookRefused(401, "the webhook's body is not the one that was signed.", "forged")
    try:
        return Parse(body.decode("utf-8"), WebhookEvent(), ignore_unknown_fields=True)
    except (ParseError, UnicodeDecodeError) as error:
        raise WebhookRefused(400, f"the body is not a LiveKit webhook event: {error}", "malformed") from None


async def _act_on(ctx: ServerContext, event: WebhookEvent) -> str:
    if event.event not in LEFT_EVENTS:
        return "ignored"
    call_id = call_id_from_room(event.room.name)
    if call_id is None:
        return "ignored: not a voxflow call's room"
    participant = event.participant
    if not _is_our_agent(participant):
        return "ignored: not the voxflow agent"
    if participant.disconnect_reason in _CALL_OVER:
        return "ignored: the room is gone, and the call with it"
    bus = ctx.voice_bus
    if bus is None:
        raise WebhookRefused(
            503,
            "this server has no voice bus to tell the call: set "
            "VOXFLOW_REDIS_URL to the Redis of the voice bus (the one the "
            "workers and agents use).",
            "no_bus",
        )
    record = await ctx.records.get_call(call_id)
    if record is None or record["status"] in FINAL_STATUSES:
        return "ignored: the call is not in progress"
    serving = await bus.load_state(call_id, AGENT_STATE_OWNER) or {}
    if serving.get("agent_id") and serving["agent_id"] != participant.identity:
        return "ignored: another agent serves the call"
    if serving.get("left"):
        return "ignored: the agent said it was leaving"
    claim = f"livekit:{event.id}" if event.id else None
    if claim is not None and not await ctx.records.claim(claim, EVENT_CLAIM_SECONDS):
        return "duplicate"
    why = DisconnectReason.Name(participant.disconnect_reason).lower().replace("_", " ")
    try:
        await bus.publish_event(
            call_id,
            AgentLeft(
                reason=f"LiveKit saw the agent {participant.identity} leave the room ({why})",
                agent_id=participant.identity,
            ),
        )
    except BaseException:
        if claim is not None:
            await ctx.records.release(claim)  # so LiveKit's next delivery is handled
        raise
    log.info("call %s: the agent %s left the room (%s)", call_id, participant.identity, why)
    await _dispatch_new_agent(ctx, event.room.name, call_id, participant.identity)
    return "agent left"


async def _dispatch_new_agent(ctx: ServerContext, room: str, call_id: str, former: str) -> None:
    """Ask LiveKit for a new agent in ``room``; a failure is logged (the call then apologises)."""
    settings = ctx.settings
    if not settings.livekit_url:
        log.warning(
            "call %s: no LIVEKIT_URL on the server, so no new agent is dispatched to "
            "%s; the call ends unless one joins within its wait",
            call_id,
            room,
        )
        return
    lkapi = LiveKitAPI(
        settings.livekit_url,
        settings.livekit_api_key,
        settings.livekit_api_secret,
        timeout=aiohttp.ClientTimeout(total=10),
        failover=False,
    )
    try:
        dispatch = await lkapi.agent_dispatch.create_dispatch(
            CreateAgentDispatchRequest(
                agent_name=AGENT_NAME,
                room=room,
                metadata=json.dumps({"call_id": call_id, "replaces": former}),
            )
        )
        log.info("call %s: dispatched a new agent to %s (%s)", call_id, room, dispatch.id)
    except Exception as error:  # noqa: BLE001 - LiveKit unreachable or refusing: said, not raised
        log.error("call %s: LiveKit did not dispatch a new agent to %s: %s", call_id, room, error)
    finally:
        await lkapi.aclose()


def _is_our_agent(participant: ParticipantInfo) -> bool:
    if participant.kind != ParticipantInfo.Kind.AGENT:
        return False
    name = participant.attributes.get(AGENT_NAME_ATTRIBUTE)
    return name is None or name == AGENT_NAME
