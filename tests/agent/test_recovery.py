"""Recovery: the workflow waits on the bus, not on the agent process.

An agent that dies mid-question is replaced by a new one on the same line;
the question is asked again and the call goes on. An agent that leaves with
no other joining within 10 s fails the call with the apology, which a later
agent says.
"""

from __future__ import annotations

import asyncio
import uuid

from engine.agent.bus_agent import BusAgent
from engine.agent.control import LocalCallControl
from engine.agent.harness import AudioHarness
from engine.runtime import messages as m
from engine.runtime.calls import start_call
from engine.runtime.services import RuntimeServices
from engine.runtime.temporal_server import connect_client
from engine.runtime.worker import WorkerOptions, create_worker
from engine.runtime.workflow import APOLOGY
from engine.voice.clock import ScaledClock
from engine.voice.messages import (
    AgentJoined,
    AgentLeft,
    Listen,
    Speak,
    SpeechComplete,
    TtsComplete,
    TtsStarted,
)
from tests.agent.conftest import CALLER, VoiceEngine, new_call_id
from tests.agent.speech import speech
from tests.agent.support import BusLog

ASK = "How can I help you today?"


def test_a_new_agent_asks_the_question_again_and_the_call_goes_on(
    voice_engine: VoiceEngine,
) -> None:
    graph = voice_engine.flows["account-balance"]
    call_id = new_call_id("recover")

    async def scenario() -> None:
        client = await connect_client(voice_engine.settings)
        control = LocalCallControl()
        bus = voice_engine.bus
        async with AudioHarness() as call, BusLog(bus, call_id, call.timeline) as log:
            first = BusAgent(bus, call_id, call.voice, LocalCallControl(), agent_id="first")
            first.start()
            handle = await start_call(
                client, graph, call_id, call={"caller_number": CALLER}, task_queue=voice_engine.task_queue
            )
            ask = await log.speak(ASK)
            asked = await log.wait_for(TtsStarted, lambda e: e.request_id == ask.request_id)
            await call.wait_until(asked.at + 1.0)
            await first.abandon()  # the process dies: no call:agent_left from it
            died = call.timeline.now()

            second = BusAgent(bus, call_id, call.voice, control, agent_id="second")
            second.start()
            joined = await log.wait_for(AgentJoined, lambda e: e.agent_id == "second")
            again = await log.speak(ASK, after=died)
            # The new agent announced the old one gone, then itself, and was asked again.
            left = log.of(AgentLeft)
            assert left and "first" in left[-1].reason
            assert log.index(left[-1]) < log.index(joined.message)
            assert again.request_id != ask.request_id

            heard_again = await log.wait_for(TtsStarted, lambda e: e.request_id == again.request_id)
            assert heard_again.at - died < 10.0
            await call.wait_until(heard_again.at + 0.8)
            call.play_caller(speech("agent"))  # over the question asked again: the answer
            heard = await log.wait_for(SpeechComplete, after=heard_again.at)
            served = [type(c).__name__ for c in second.commands]
            assert served[:2] == ["Listen", "Speak"], served  # nothing from before it joined
            assert heard.message.transcript == "agent"
            assert heard.message.request_id == log.of(Listen)[-1].request_id
            result = await asyncio.wait_for(handle.result(), 30)

        assert result.status == m.TRANSFERRED, result
        assert control.transfers == ["tel:+15550001111"]
        assert log.spoken()[-1] == "Connecting you to an agent."

    asyncio.run(scenario())


def test_with_no_agent_back_within_10_s_the_call_fails_with_an_apology(
    voice_engine: VoiceEngine,
) -> None:
    """Flow time runs 1/0.3 times as fast here: the 10 s wait for an agent takes 3 s."""
    graph = voice_engine.flows["account-balance"]
    call_id = new_call_id("noagent")

    async def scenario() -> None:
        bus = voice_engine.bus
        client = await connect_client(voice_engine.settings)
        services = RuntimeServices(voice_bus=bus, voice_clock=ScaledClock(0.3))
        queue = f"voxflow-agent-scaled-{uuid.uuid4().hex[:6]}"
        worker = create_worker(client, services, WorkerOptions(task_queue=queue, graceful_shutdown=1))
        async with worker, AudioHarness() as call, BusLog(bus, call_id, call.timeline) as log:
            first = BusAgent(bus, call_id, call.voice, LocalCallControl(), agent_id="first")
            first.start()
            handle = await start_call(
                client, graph, call_id, call={"caller_number": CALLER}, task_queue=queue
            )
            greeting = await log.speak("Hello")
            await log.wait_for(TtsStarted, lambda e: e.request_id == greeting.request_id)
            await first.leave("the agent process is stopping")
            left = await log.wait_for(AgentLeft)

            apology = await log.speak(APOLOGY, after=left.at, timeout=15)
            waited = log.commands[-1].at - left.at
            assert 2.5 <= waited <= 6.0, waited  # 10 flow seconds, then the node failed
            control = LocalCallControl()
            second = BusAgent(bus, call_id, call.voice, control, agent_id="second")
            second.start()
            said = await log.wait_for(
                TtsComplete,
                lambda e: (
                    e.request_id != apology.request_id
                    and e.request_id in {s.request_id for s in log.of(Speak) if s.text == APOLOGY}
                ),
                timeout=15,
            )
            heard_from = [s for s in call.speaker.segments if s.started_at and s.started_at > left.at]
            assert heard_from and heard_from[-1].played > 2.0  # the apology, heard in full
            result = await asyncio.wait_for(handle.result(), 20)
            assert said.at < call.timeline.now()

        assert result.status == m.FAILED, result
        assert "no other agent joined within 10 seconds" in result.reason
        assert control.hung_up is not None
        await services.close()

    asyncio.run(scenario())
