"""Transfer, hang-up and call recording through LiveKit's server API (livekit-api, Twirp).

- transfer: ``SIP.TransferSIPParticipant`` (a SIP REFER to a tel: or sip: URI);
- hang up: ``RoomService.DeleteRoom`` (everyone leaves, the SIP leg ends);
- recording: ``Egress.StartRoomCompositeEgress``, audio only, to a file the
  egress service stores (its own storage settings: local disk, S3, ...).
"""

from __future__ import annotations

import logging

from livekit import api

from engine.agent.control import CallControlError, transfer_uri

log = logging.getLogger(__name__)
DEFAULT_RECORDING_PATH = "voxflow/{room}-{time}.ogg"


class LiveKitCallControl:
    def __init__(self, lk: api.LiveKitAPI, room: str, caller_identity: str) -> None:
        self._lk = lk
        self.room = room
        self.caller_identity = caller_identity

    async def transfer(self, destination: str) -> None:
        uri = transfer_uri(destination)
        request = api.TransferSIPParticipantRequest(
            room_name=self.room,
            participant_identity=self.caller_identity,
            transfer_to=uri,
            play_dialtone=False,
        )
        try:
            answer = await self._lk.sip.transfer_sip_participant(request)
        except api.TwirpError as error:
            raise CallControlError(f"the transfer to {destination} failed: {_why(error)}") from None
        except Exception as error:  # noqa: BLE001 - the network: said plainly, the call goes on
            raise CallControlError(
                f"the transfer to {destination} failed: LiveKit could not be reached ({error})"
            ) from None
        if answer.status == api.SIPTransferStatus.STS_TRANSFER_FAILED:
            reason = api.SIPTransferReason.Name(answer.reason) if answer.reason else "failed"
            sip = answer.sip_status
            code = f" (SIP {sip.code} {sip.status})".replace(" )", ")") if sip.code else ""
            raise CallControlError(f"the transfer to {destination} failed: {reason}{code}")

    async def hangup(self, reason: str) -> None:
        try:
            await self._lk.room.delete_room(api.DeleteRoomRequest(room=self.room))
        except api.TwirpError as error:
            if error.code != api.TwirpErrorCode.NOT_FOUND:  # already gone: hung up all the same
                raise CallControlError(f"hanging up failed: {_why(error)}") from None

    async def start_recording(self, filepath: str = DEFAULT_RECORDING_PATH) -> str:
        """Record the whole call (both sides, audio only); the egress id.

        ``{room}`` and ``{time}`` in ``filepath`` are LiveKit's own placeholders.
        """
        request = api.RoomCompositeEgressRequest(
            room_name=self.room,
            audio_only=True,
            file_outputs=[api.EncodedFileOutput(file_type=api.EncodedFileType.OGG, filepath=filepath)],
        )
        try:
            info = await self._lk.egress.start_room_composite_egress(request)
        except api.TwirpError as error:
            raise CallControlError(f"the call recording could not start: {_why(error)}") from None
        return str(info.egress_id)


def _why(error: api.TwirpError) -> str:
    return f"{error.message or error.code} ({error.code})"
