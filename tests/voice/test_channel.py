"""The channel's contract with the agent: stop on cancel, errors, agents that leave and come back."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable
from types import SimpleNamespace

import pytest

from engine.core.errors import VoxflowError
from engine.voice.bus import START, StreamCursor, VoiceBus
from engine.voice.channel import ChannelPolicy, Prompt, VoiceChannel
from engine.voice.errors import AgentError, AgentTimeout
from engine.voice.messages import (
    AgentJoined,
    AgentLeft,
    Command,
    ErrorEvent,
    Listen,
    Speak,
    SpeechComplete,
    SpeechPartial,
    SpeechStarted,
    Stop,
    TtsStarted,
)
from engine.voice.simulated_agent import Say, SimulatedAgent
from tests.voice.support import CLOCK, Buses, execute, new_call_id, run
from tests.waiting import wait_until


async def _commands(bus: VoiceBus, call: str) -> list[Command]:
    return [c for _, c in await bus.read_commands(call, START, 0) if c is not None]


def _read_past(channel: VoiceChannel, entry_id: str) -> bool:
    """Whether the node has read its events up to ``entry_id`` (ids are "ms-seq")."""
    position = channel._cursor.position  # noqa: SLF001 - how far the node has read
    if "-" not in position:
        return False
    return tuple(map(int, position.split("-"))) >= tuple(map(int, entry_id.split("-")))


async def _count(commands: Awaitable[list[Command]], at_least: int) -> bool:
    return len(await commands) >= at_least


def test_a_cancelled_node_stops_what_it_started(buses: Buses) -> None:
    async def scenario(bus: VoiceBus) -> None:
        call = new_call_id()
        agent = SimulatedAgent(bus, call, clock=CLOCK)  # a caller who never answers
        agent.start()
        async with VoiceChannel(bus, call, clock=CLOCK) as channel:
            listening = asyncio.ensure_future(channel.listen(prompt=Prompt("Hello?"), no_input_timeout=1000))
            await wait_until(lambda: any(isinstance(c, Listen) for c in agent.commands), what="the listen")
            listening.cancel()  # what a hangup signal does to the activity
            with pytest.raises(asyncio.CancelledError):
                await listening
        commands = await _commands(bus, call)
        listen = next(c for c in commands if isinstance(c, Listen))
        stops = [c.target for c in commands if isinstance(c, Stop)]
        assert listen.request_id in stops
        assert await bus.load_state(call, "plugin") is not None  # saved even when cancelled
        await agent.stop()

    run(buses, scenario)


def test_an_agent_error_fails_the_request(memory_buses: Buses) -> None:
    async def scenario(bus: VoiceBus) -> None:
        call = new_call_id()

        async def broken_agent() -> None:
            cursor: StreamCursor[Command] = StreamCursor(functools.partial(bus.read_commands, call))
            entry = await cursor.next(5)
            assert entry is not None and isinstance(entry[1], Speak)
            await bus.publish_event(call, TtsStarted(request_id=entry[1].request_id))
            await bus.publish_event(
                call,
                ErrorEvent(request_id=entry[1].request_id, code="tts", message="the speech service is down"),
            )

        task = asyncio.ensure_future(broken_agent())
        async with VoiceChannel(bus, call, clock=CLOCK) as channel:
            with pytest.raises(AgentError, match="speech service is down") as caught:
                await channel.speak("Hello")
        assert caught.value.code == "tts"
        await task

    run(memory_buses, scenario)


def test_no_agent_at_all_times_out_plainly(memory_buses: Buses) -> None:
    async def scenario(bus: VoiceBus) -> None:
        policy = ChannelPolicy(speak_timeout=2, seconds_per_character=0)
        async with VoiceChannel(bus, new_call_id(), clock=CLOCK, policy=policy) as channel:
            with pytest.raises(AgentTimeout, match='did not finish saying "Hello" within 2'):
                await channel.speak("Hello")

    run(memory_buses, scenario)


def test_commands_sent_before_the_agent_joins_are_served(buses: Buses) -> None:
    async def scenario(bus: VoiceBus) -> None:
        call = new_call_id()

        async def late_agent() -> SimulatedAgent:
            # Joins once the question has been sent, with nobody there to take it.
            await wait_until(lambda: _commands(bus, call), what="the question")
            agent = SimulatedAgent(bus, call, [Say("yes")], clock=CLOCK)
            agent.start()
            return agent

        joining = asyncio.ensure_future(late_agent())
        async with VoiceChannel(bus, call, clock=CLOCK) as channel:
            result = await channel.listen(prompt=Prompt("Ready?"))
        assert result.transcript == "yes"
        await (await joining).stop()

    run(buses, scenario)


def test_when_the_agent_is_replaced_the_question_is_asked_again(buses: Buses) -> None:
    async def scenario(bus: VoiceBus) -> None:
        call = new_call_id()
        first = SimulatedAgent(bus, call, clock=CLOCK, agent_id="first")
        first.start()
        async with VoiceChannel(bus, call, clock=CLOCK) as channel:
            asking = asyncio.ensure_future(
                channel.listen(prompt=Prompt("Which account?"), no_input_timeout=100)
            )
            await wait_until(lambda: len(first.commands) == 2, what="the question")
            await first.stop()  # the agent process dies: call:agent_left
            second = SimulatedAgent(bus, call, [Say("savings")], clock=CLOCK, agent_id="second")
            second.start()
            result = await asyncio.wait_for(asking, 5)
        assert result.transcript == "savings"
        assert [type(c).__name__ for c in first.commands] == ["Listen", "Speak"]
        # the new agent got the question again, and nothing from before it joined
        assert [type(c).__name__ for c in second.commands] == ["Listen", "Speak"]
        await second.stop()

    run(buses, scenario)


def test_a_new_agent_that_joins_without_a_word_from_the_old_one_is_asked_again(
    buses: Buses,
) -> None:
    """The old agent dies silently (no call:agent_left) and a new one joins first: its
    agent_joined alone restarts the question; the first agent's agent_joined did not."""

    async def scenario(bus: VoiceBus) -> None:
        call = new_call_id()
        first = SimulatedAgent(bus, call, clock=CLOCK, agent_id="first")
        first.start()
        async with VoiceChannel(bus, call, clock=CLOCK) as channel:
            asking = asyncio.ensure_future(
                channel.listen(prompt=Prompt("Which account?"), no_input_timeout=100)
            )
            await wait_until(lambda: len(first.commands) == 2, what="the question")
            await first.stop(announce=False)  # the process dies: nothing said
            second = SimulatedAgent(bus, call, [Say("savings")], clock=CLOCK, agent_id="second")
            second.start()
            result = await asyncio.wait_for(asking, 5)
            assert channel.state.agent_id == "second"
        assert result.transcript == "savings"
        assert [type(c).__name__ for c in first.commands] == ["Listen", "Speak"]
        old = {c.request_id for c in first.commands}
        # the first question was stopped (in case the new agent had it), then asked again
        served = [(type(c).__name__, getattr(c, "target", None) in old) for c in second.commands]
        assert served[-2:] == [("Listen", False), ("Speak", False)], served
        assert all(is_old for kind, is_old in served if kind == "Stop")
        again = [c for c in second.commands if isinstance(c, Speak)]
        assert len(again) == 1 and again[0].request_id not in old
        await second.stop()

    run(buses, scenario)


def test_a_late_report_that_the_replaced_agent_left_changes_nothing(buses: Buses) -> None:
    """LiveKit's webhook for a dead agent may come after its successor joined: that
    call:agent_left names the old agent, so the call keeps its new one and goes on."""

    async def scenario(bus: VoiceBus) -> None:
        call = new_call_id()
        first = SimulatedAgent(bus, call, clock=CLOCK, agent_id="first")
        first.start()
        async with VoiceChannel(bus, call, clock=CLOCK) as channel:
            asking = asyncio.ensure_future(
                channel.listen(prompt=Prompt("Which account?"), no_input_timeout=100)
            )
            await wait_until(lambda: len(first.commands) == 2, what="the question")
            await first.stop(announce=False)  # dies without a word
            second = SimulatedAgent(bus, call, clock=CLOCK, agent_id="second")
            second.start()
            await wait_until(
                lambda: any(isinstance(c, Speak) for c in second.commands), what="the question again"
            )
            asked = len(second.commands)
            left = await bus.publish_event(call, AgentLeft(reason="LiveKit: first left", agent_id="first"))
            # The node has read the report (and, waiting for an agent, would read on).
            await wait_until(lambda: _read_past(channel, left), what="the node to read the report")
            assert not asking.done()  # not failed, not waiting for yet another agent
            await bus.publish_event(
                call,
                SpeechComplete(
                    request_id=next(c.request_id for c in reversed(second.commands) if isinstance(c, Listen)),
                    transcript="savings",
                    confidence=0.9,
                ),
            )
            result = await asyncio.wait_for(asking, 5)
        assert result.transcript == "savings"
        assert len(second.commands) == asked  # the question was not asked a third time
        await second.stop()

    run(buses, scenario)


def test_the_same_agent_announcing_itself_again_restarts_nothing(memory_buses: Buses) -> None:
    async def scenario(bus: VoiceBus) -> None:
        call = new_call_id()
        agent = SimulatedAgent(bus, call, [Say("savings")], clock=CLOCK, agent_id="only")
        async with VoiceChannel(bus, call, clock=CLOCK) as channel:
            asking = asyncio.ensure_future(
                channel.listen(prompt=Prompt("Which account?"), no_input_timeout=100)
            )
            # The question waits on the bus: no agent yet.
            await wait_until(lambda: _count(_commands(bus, call), 2), what="the question on the bus")
            agent.start()  # the call's first agent_joined, with requests outstanding
            await wait_until(lambda: len(agent.commands) >= 2, what="the question")
            await bus.publish_event(call, AgentJoined(agent_id="only"))
            result = await asyncio.wait_for(asking, 5)
        assert result.transcript == "savings"
        assert [type(c).__name__ for c in agent.commands] == ["Listen", "Speak"]
        await agent.stop()

    run(memory_buses, scenario)


def test_when_no_agent_comes_back_the_node_fails(memory_buses: Buses) -> None:
    async def scenario(bus: VoiceBus) -> None:
        call = new_call_id()
        agent = SimulatedAgent(bus, call, clock=CLOCK)
        agent.start()
        async with VoiceChannel(bus, call, clock=CLOCK) as channel:
            asking = asyncio.ensure_future(channel.listen(prompt=Prompt("Hm?"), no_input_timeout=100))
            await wait_until(lambda: len(agent.commands) == 2, what="the question")
            await agent.stop()
            with pytest.raises(AgentTimeout, match="no other agent joined within 10 seconds"):
                await asking

    run(memory_buses, scenario)


def test_a_node_without_a_voice_bus_says_what_is_missing() -> None:
    async def scenario() -> None:
        from engine.plugin_api import NodeContext
        from plugins import voice_speak

        with pytest.raises(VoxflowError, match=r"services\.voice_bus"):
            await voice_speak.execute(
                {"message": "Hi", "next": "x"}, NodeContext("c", "hello", {}), SimpleNamespace()
            )

    asyncio.run(scenario())


def test_the_agent_joins_once_per_process(memory_buses: Buses) -> None:
    async def scenario(bus: VoiceBus) -> None:
        call = new_call_id()
        agent = SimulatedAgent(bus, call, clock=CLOCK)
        agent.start()
        await execute(bus, "voice_speak", {"message": "Hi"}, call_id=call)
        await agent.stop()
        joined = [e for _, e in await bus.read_events(call, START, 0) if isinstance(e, AgentJoined)]
        assert [e.agent_id for e in joined] == ["simulator"]

    run(memory_buses, scenario)


def test_max_duration_is_kept_even_if_the_agent_never_ends_the_answer(
    memory_buses: Buses,
) -> None:
    async def scenario(bus: VoiceBus) -> None:
        call = new_call_id()

        async def rambling_agent() -> None:  # hears speech that never ends
            cursor: StreamCursor[Command] = StreamCursor(functools.partial(bus.read_commands, call))
            entry = await cursor.next(5)
            assert entry is not None and isinstance(entry[1], Listen)
            rid = entry[1].request_id
            await bus.publish_event(call, SpeechStarted(request_id=rid))
            await bus.publish_event(
                call, SpeechPartial(request_id=rid, transcript="and then", confidence=0.7)
            )

        task = asyncio.ensure_future(rambling_agent())
        async with VoiceChannel(bus, call, clock=CLOCK) as channel:
            result = await channel.listen(max_duration=4)
        assert (result.kind, result.transcript, result.truncated) == ("speech", "and then", True)
        commands = await _commands(bus, call)
        assert isinstance(commands[-1], Stop)  # the agent is told to stop listening
        await task

    run(memory_buses, scenario)
