"""A local server that imitates LiveKit's server API (Twirp), on its real wire format.

LiveKit's server API is Twirp: ``POST /twirp/livekit.<Service>/<Method>`` with
a protobuf body (``Content-Type: application/protobuf``) and
``Authorization: Bearer <JWT>`` signed with the API secret, whose grants must
allow the call; answers are protobuf, errors JSON ``{"code", "msg", "meta"}``
with the HTTP status of the Twirp code. This one verifies the token as
LiveKit does (livekit-api's TokenVerifier) and answers:

- ``RoomService/DeleteRoom`` (needs roomCreate): the room goes; an unknown one is
  ``not_found``;
- ``SIP/TransferSIPParticipant`` (needs roomAdmin on the room and sip.call): a
  destination listed in ``busy`` fails as a rejected REFER (status
  STS_TRANSFER_FAILED, SIP 486), others succeed;
- ``Egress/StartRoomCompositeEgress`` (needs roomRecord): an EgressInfo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from google.protobuf.message import Message
from livekit import api

_STATUS = {
    "not_found": 404,
    "unauthenticated": 401,
    "permission_denied": 403,
    "malformed": 400,
    "bad_route": 404,
}


@dataclass
class LiveKitState:
    api_key: str
    api_secret: str
    rooms: set[str] = field(default_factory=set)
    busy: set[str] = field(default_factory=set)
    calls: list[tuple[str, Message]] = field(default_factory=list)  # (method, request)


class _Refused(Exception):
    def __init__(self, code: str, msg: str) -> None:
        self.code, self.msg = code, msg


def build_app(state: LiveKitState) -> web.Application:
    verifier = api.TokenVerifier(state.api_key, state.api_secret)

    def claims(request: web.Request) -> Any:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            raise _Refused("unauthenticated", "authorization header is missing")
        try:
            return verifier.verify(header.removeprefix("Bearer "))
        except Exception as error:  # noqa: BLE001 - any bad token is refused the same way
            raise _Refused("unauthenticated", f"invalid token: {error}") from None

    async def delete_room(request: web.Request, body: bytes) -> Message:
        grant = claims(request).video
        if not grant.room_create:
            raise _Refused("permission_denied", "requires roomCreate")
        req = api.DeleteRoomRequest.FromString(body)
        state.calls.append(("DeleteRoom", req))
        if req.room not in state.rooms:
            raise _Refused("not_found", "requested room does not exist")
        state.rooms.discard(req.room)
        return api.DeleteRoomResponse()

    async def transfer(request: web.Request, body: bytes) -> Message:
        granted = claims(request)
        req = api.TransferSIPParticipantRequest.FromString(body)
        if not (granted.video.room_admin and granted.video.room == req.room_name and granted.sip.call):
            raise _Refused("permission_denied", "requires roomAdmin on the room and sip.call")
        state.calls.append(("TransferSIPParticipant", req))
        if req.room_name not in state.rooms:
            raise _Refused("not_found", "requested room does not exist")
        if req.transfer_to in state.busy:
            return api.TransferSIPParticipantResponse(
                transfer_id="ST_busy",
                status=api.SIPTransferStatus.STS_TRANSFER_FAILED,
                reason=api.SIPTransferReason.STR_REJECTED,
                sip_status=api.SIPStatus(code=486, status="Busy Here"),
            )
        return api.TransferSIPParticipantResponse(
            transfer_id="ST_ok",
            status=api.SIPTransferStatus.STS_TRANSFER_SUCCESSFUL,
            reason=api.SIPTransferReason.STR_COMPLETED,
        )

    async def start_egress(request: web.Request, body: bytes) -> Message:
        if not claims(request).video.room_record:
            raise _Refused("permission_denied", "requires roomRecord")
        req = api.RoomCompositeEgressRequest.FromString(body)
        state.calls.append(("StartRoomCompositeEgress", req))
        return api.EgressInfo(
            egress_id="EG_test", room_name=req.room_name, status=api.EgressStatus.EGRESS_STARTING
        )

    routes = {
        "livekit.RoomService/DeleteRoom": delete_room,
        "livekit.SIP/TransferSIPParticipant": transfer,
        "livekit.Egress/StartRoomCompositeEgress": start_egress,
    }

    async def twirp(request: web.Request) -> web.Response:
        handler = routes.get(request.match_info["route"])
        try:
            if handler is None:
                raise _Refused("bad_route", f"no handler for {request.match_info['route']}")
            if request.content_type != "application/protobuf":
                raise _Refused("malformed", "expected application/protobuf")
            answer = await handler(request, await request.read())
        except _Refused as refused:
            return web.json_response(
                {"code": refused.code, "msg": refused.msg}, status=_STATUS.get(refused.code, 400)
            )
        return web.Response(body=answer.SerializeToString(), content_type="application/protobuf")

    app = web.Application()
    app.router.add_post("/twirp/{route:.+}", twirp)
    return app


async def start(state: LiveKitState) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(build_app(state))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"
