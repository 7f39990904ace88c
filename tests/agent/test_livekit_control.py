"""Transfer, hang-up and recording through livekit-api, against a local server that speaks
LiveKit's Twirp API (tests/agent/livekit_server.py); and the call context from the server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web
from livekit import api

from engine.agent.call_context import CallContext, fetch_call_context, parse_call_context
from engine.agent.control import CallControlError, LocalCallControl, transfer_uri
from engine.agent.livekit_control import LiveKitCallControl
from engine.agent.worker import call_id_from_room
from tests.agent import livekit_server

ROOM = "call-abc123"
CALLER = "sip_+15550100"


def _with_livekit(scenario: Any, state: livekit_server.LiveKitState) -> Any:
    async def main() -> Any:
        runner, url = await livekit_server.start(state)
        try:
            async with api.LiveKitAPI(url, state.api_key, state.api_secret) as lk:
                return await scenario(LiveKitCallControl(lk, ROOM, CALLER))
        finally:
            await runner.cleanup()

    return asyncio.run(main())


def test_transfer_refers_the_sip_caller_to_a_tel_or_sip_uri() -> None:
    state = livekit_server.LiveKitState(
        "key", "secret-secret-secret-secret-1234", rooms={ROOM}, busy={"tel:+15550009999"}
    )

    async def scenario(control: LiveKitCallControl) -> str:
        await control.transfer("+1 555 000 1111")
        await control.transfer("sip:agent@pbx.example.com")
        with pytest.raises(CallControlError) as caught:
            await control.transfer("+15550009999")
        return str(caught.value)

    problem = _with_livekit(scenario, state)
    sent = [req for method, req in state.calls if method == "TransferSIPParticipant"]
    assert [r.transfer_to for r in sent] == [
        "tel:+15550001111",
        "sip:agent@pbx.example.com",
        "tel:+15550009999",
    ]
    assert all(r.room_name == ROOM and r.participant_identity == CALLER for r in sent)
    assert problem == ("the transfer to +15550009999 failed: STR_REJECTED (SIP 486 Busy Here)")


def test_hangup_deletes_the_room_and_a_gone_room_is_no_error() -> None:
    state = livekit_server.LiveKitState("key", "secret-secret-secret-secret-1234", rooms={ROOM})

    async def scenario(control: LiveKitCallControl) -> None:
        await control.hangup("the flow hung up")
        await control.hangup("again")  # not_found: the call is over either way

    _with_livekit(scenario, state)
    assert [m for m, _ in state.calls] == ["DeleteRoom", "DeleteRoom"]
    assert ROOM not in state.rooms


def test_call_recording_starts_an_audio_only_egress() -> None:
    state = livekit_server.LiveKitState("key", "secret-secret-secret-secret-1234", rooms={ROOM})

    async def scenario(control: LiveKitCallControl) -> str:
        return await control.start_recording("calls/{room}-{time}.ogg")

    assert _with_livekit(scenario, state) == "EG_test"
    method, request = state.calls[-1]
    assert method == "StartRoomCompositeEgress"
    assert request.room_name == ROOM and request.audio_only
    assert request.file_outputs[0].filepath == "calls/{room}-{time}.ogg"
    assert request.file_outputs[0].file_type == api.EncodedFileType.OGG


def test_a_wrong_secret_is_refused_in_plain_words() -> None:
    state = livekit_server.LiveKitState("key", "secret-secret-secret-secret-1234", rooms={ROOM})

    async def main() -> str:
        runner, url = await livekit_server.start(state)
        try:
            async with api.LiveKitAPI(url, "key", "another-secret-another-secret-12") as lk:
                with pytest.raises(CallControlError) as caught:
                    await LiveKitCallControl(lk, ROOM, CALLER).transfer("+15550001111")
                return str(caught.value)
        finally:
            await runner.cleanup()

    assert "unauthenticated" in asyncio.run(main())


def test_transfer_destinations_become_uris() -> None:
    assert transfer_uri("+15550001111") == "tel:+15550001111"
    assert transfer_uri("tel:+44 20 7946 0000") == "tel:+442079460000"
    assert transfer_uri("sips:desk@pbx.example.com") == "sips:desk@pbx.example.com"
    with pytest.raises(CallControlError, match="international form"):
        transfer_uri("the front desk")
    local = LocalCallControl(failing=["+15550009999"])
    asyncio.run(local.transfer("+15550001111"))
    assert local.transfers == ["tel:+15550001111"]
    with pytest.raises(CallControlError, match="busy"):
        asyncio.run(local.transfer("+15550009999"))


def test_rooms_map_to_calls() -> None:
    assert call_id_from_room("call-abc123") == "abc123"
    assert call_id_from_room("lobby") is None
    assert call_id_from_room("call-") is None


def test_the_call_context_comes_from_the_server_with_the_shared_token() -> None:
    seen: list[str] = []

    async def context(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        if request.headers.get("Authorization") != "Bearer s3cret":
            return web.json_response({"error": "unauthorised"}, status=401)
        if request.match_info["call_id"] != "abc123":
            return web.json_response({"error": "no such call"}, status=404)
        return web.json_response(
            {
                "call_id": "abc123",
                "flow": "ivr-menu",
                "trigger": {"enable_recording": True, "language": "en-GB"},
                "settings": {"voice": "rachel", "stt": "deepgram"},
            }
        )

    async def main() -> tuple[CallContext | None, CallContext | None, CallContext | None, CallContext | None]:
        app = web.Application()
        app.router.add_get("/api/internal/call-context/{call_id}", context)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        try:
            return (
                await fetch_call_context(url, "s3cret", "abc123"),
                await fetch_call_context(url, "s3cret", "other"),
                await fetch_call_context(url, "wrong", "abc123"),
                await fetch_call_context("http://127.0.0.1:9", "s3cret", "abc123", timeout=1),
            )
        finally:
            await runner.cleanup()

    found, unknown, refused, unreachable = asyncio.run(main())
    assert found == CallContext(
        "abc123", enable_recording=True, language="en-GB", voice="rachel", stt="deepgram", tts=None
    )
    assert unknown is None and refused is None and unreachable is None
    assert seen[0] == "Bearer s3cret"
    assert parse_call_context("x", {"recording": True}).enable_recording
    assert not parse_call_context("x", {}).enable_recording
    assert parse_call_context("x", {"prompts": ["Hello.", "", 3, "Bye."]}).prompts == ("Hello.", "Bye.")
    assert parse_call_context("x", {"prompts": "Hello."}).prompts == ()
