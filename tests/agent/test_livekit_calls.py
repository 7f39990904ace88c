"""A call's transfers, hang-ups and recording, from the flow to LiveKit's server API.

The worker's room glue minus the room: the flow runs on the real engine, its
voice nodes talk over the bus to a BusAgent (on the audio harness, real speech)
whose call control is the worker's LiveKitCallControl, on a LiveKitAPI built as
a job's ``JobContext.api`` builds it (credentials from LIVEKIT_URL /
LIVEKIT_API_KEY / LIVEKIT_API_SECRET, the job's HTTP session). LiveKit is the
local server that speaks its Twirp API (tests/agent/livekit_server.py).
What needs a real LiveKit server (connecting to the room, the SIP participant,
its audio and DTMF) is not here: no LiveKit server can run in these tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from livekit import api
from livekit.agents.utils import http_context

from engine.agent.bus_agent import BusAgent
from engine.agent.harness import AudioHarness
from engine.agent.livekit_control import LiveKitCallControl
from engine.agent.worker import RECORDING_STATE_OWNER, record_call
from engine.runtime import messages as m
from engine.runtime.calls import start_call
from engine.runtime.temporal_server import connect_client
from engine.voice.memory_bus import MemoryVoiceBus
from tests.agent import livekit_server
from tests.agent.conftest import CALLER, VoiceEngine, new_call_id
from tests.voice.support import compiled

KEY, SECRET = "lk-key", "lk-secret-lk-secret-lk-secret-123"
SIP_CALLER = "sip_+15550100"
BUSY = "+15550009999"
FLOW = """
flow: handoff
start: hello
variables:
  desk: {default: "+15550001111"}
nodes:
  hello: {type: voice_greet, message: "Hello.", next: move}
  move: {type: voice_transfer, destination: "${desk}", on_error: sorry}
  sorry: {type: voice_hangup, farewell_message: "Nobody is free. Goodbye."}
"""
_T = TypeVar("_T")


def _with_livekit(
    state: livekit_server.LiveKitState,
    monkeypatch: pytest.MonkeyPatch,
    scenario: Callable[[api.LiveKitAPI], Awaitable[_T]],
) -> _T:
    async def main() -> _T:
        runner, url = await livekit_server.start(state)
        # What `voxflow agent` exports for its jobs; LIVEKIT_URL as users write it (ws://).
        monkeypatch.setenv("LIVEKIT_URL", url.replace("http://", "ws://"))
        monkeypatch.setenv("LIVEKIT_API_KEY", KEY)
        monkeypatch.setenv("LIVEKIT_API_SECRET", SECRET)
        try:
            async with http_context.open():
                lk = api.LiveKitAPI(session=http_context.http_session())  # = JobContext.api
                try:
                    return await scenario(lk)
                finally:
                    await lk.aclose()
        finally:
            await runner.cleanup()

    return asyncio.run(main())


async def _call(
    engine: VoiceEngine, lk: api.LiveKitAPI, state: livekit_server.LiveKitState, desk: str
) -> tuple[str, m.CallResult, str | None]:
    """One call of FLOW served through LiveKit's API; its room, result and how it ended."""
    client = await connect_client(engine.settings)
    call_id = new_call_id("lk")
    room = f"call-{call_id}"
    state.rooms.add(room)
    async with AudioHarness() as harness:
        agent = BusAgent(
            engine.bus,
            call_id,
            harness.voice,
            LiveKitCallControl(lk, room, SIP_CALLER),
            agent_id=f"agent-AJ_{call_id}",
        )
        serving = agent.start()
        handle = await start_call(
            client,
            compiled(FLOW),
            call_id,
            call={"caller_number": CALLER},
            variables={"desk": desk},
            task_queue=engine.task_queue,
        )
        result: m.CallResult = await asyncio.wait_for(handle.result(), 60)
        ended = await asyncio.wait_for(serving, 10)
    return room, result, ended


def test_a_transfer_is_a_sip_refer_of_the_caller_through_livekit(
    voice_engine: VoiceEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = livekit_server.LiveKitState(KEY, SECRET)
    room, result, ended = _with_livekit(
        state, monkeypatch, lambda lk: _call(voice_engine, lk, state, "+15550001111")
    )
    assert result.status == m.TRANSFERRED, result
    assert ended == "transfer"
    [(method, request)] = state.calls
    assert method == "TransferSIPParticipant"
    assert (request.room_name, request.participant_identity, request.transfer_to) == (
        room,
        SIP_CALLER,
        "tel:+15550001111",
    )


def test_a_refused_transfer_takes_on_error_and_hanging_up_deletes_the_room(
    voice_engine: VoiceEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = livekit_server.LiveKitState(KEY, SECRET, busy={f"tel:{BUSY}"})
    room, result, ended = _with_livekit(state, monkeypatch, lambda lk: _call(voice_engine, lk, state, BUSY))
    assert result.status == m.COMPLETED, result
    assert result.path == ["hello", "move", "sorry"]
    assert ended == "hangup"
    assert [method for method, _ in state.calls] == ["TransferSIPParticipant", "DeleteRoom"]
    assert state.calls[1][1].room == room  # type: ignore[attr-defined]
    assert room not in state.rooms  # the room is gone: everyone, the SIP leg too, is hung up


def test_a_recorded_call_starts_an_egress_and_keeps_its_id_on_the_bus(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bus = MemoryVoiceBus()
    state = livekit_server.LiveKitState(KEY, SECRET, rooms={"call-rec1", "call-rec2"})

    async def scenario(lk: api.LiveKitAPI) -> tuple[Any, Any]:
        recorded = await record_call(
            LiveKitCallControl(lk, "call-rec1", SIP_CALLER), bus, "rec1", "calls/{room}-{time}.ogg"
        )
        # A LiveKit that refuses (here: another project's secret): the call goes on unrecorded.
        async with api.LiveKitAPI(
            api_key=KEY, api_secret="another-secret-another-secret-1234", session=http_context.http_session()
        ) as other:
            refused = await record_call(
                LiveKitCallControl(other, "call-rec2", SIP_CALLER), bus, "rec2", "calls/{room}-{time}.ogg"
            )
        return recorded, refused

    recorded, refused = _with_livekit(state, monkeypatch, scenario)
    assert recorded == "EG_test" and refused is None
    [(method, request)] = state.calls
    assert method == "StartRoomCompositeEgress" and request.room_name == "call-rec1"
    saved = asyncio.run(bus.load_state("rec1", RECORDING_STATE_OWNER))
    assert saved == {"egress_id": "EG_test", "filepath": "calls/{room}-{time}.ogg"}
    assert asyncio.run(bus.load_state("rec2", RECORDING_STATE_OWNER)) is None
