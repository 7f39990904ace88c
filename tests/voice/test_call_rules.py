"""Rules that span prompts and nodes: barge-in carried to the next question, type-ahead,
the silence rule, rapid interruptions."""

from __future__ import annotations

from engine.voice.bus import VoiceBus
from engine.voice.channel import VoiceChannel
from engine.voice.simulated_agent import Press, Say, Silence, SimulatedAgent
from tests.voice.support import CLOCK, Buses, compiled, new_call_id, run, run_node, said, walk

GREETING = compiled("""
flow: t
settings: {barge_in: true, no_input_timeout: 5s}
start: greet
nodes:
  greet:
    type: voice_greet
    message: "Hello! Welcome to Acme Bank."
    next: menu
  menu:
    type: voice_menu
    prompt: "Press 1 or say balance. Press 0 or say agent."
    options:
      - {key: "1", phrases: [balance, my balance], next: ask}
      - {key: "0", phrases: [agent], next: done}
    no_input: [{reprompt: "Press 1 or 0."}, {next: done}]
    no_match: [{reprompt: "Press 1 or 0."}, {next: done}]
  ask:
    type: voice_listen
    prompt: "Which account?"
    no_input: [{next: done}]
    save_as: account
    next: done
  done: {type: end}
""")


def test_words_said_over_a_message_answer_the_next_question(buses: Buses) -> None:
    async def scenario(bus: VoiceBus) -> None:
        result = await walk(bus, GREETING, [Say("my balance please", barge_in=True), Say("savings")])
        assert result.path == ["greet", "menu", "ask", "done"]
        # the menu was never read: the caller had already answered it
        assert said(result.agent) == ["~Hello! Welcome to Acme Bank.", "Which account?"]
        assert result.variables["account"]["transcript"] == "savings"

    run(buses, scenario)


def test_keys_typed_ahead_are_used_by_the_next_question(buses: Buses) -> None:
    async def scenario(bus: VoiceBus) -> None:
        result = await walk(bus, GREETING, [Press("0", barge_in=True)])
        assert result.path == ["greet", "menu", "done"]
        assert said(result.agent) == ["~Hello! Welcome to Acme Bank."]
        assert result.results[1].exit == "options[1].next"

    run(buses, scenario)


def test_a_prompt_that_cannot_be_cut_is_heard_out(memory_buses: Buses) -> None:
    graph = compiled(GREETING_TEXT.replace("settings: {barge_in: true", "settings: {barge_in: false"))

    async def scenario(bus: VoiceBus) -> None:
        result = await walk(bus, graph, [Say("agent", barge_in=True)])
        assert said(result.agent) == [
            "Hello! Welcome to Acme Bank.",
            "Press 1 or say balance. Press 0 or say agent.",
        ]
        assert result.path == ["greet", "menu", "done"]

    run(memory_buses, scenario)


# ---- silence -------------------------------------------------------------------

PATIENT = compiled("""
flow: t
settings: {no_input_timeout: 5s}
start: ask
nodes:
  ask:
    type: voice_listen
    prompt: "What is your name?"
    no_input: [{reprompt: "Hello?"}]
    next: done
  done: {type: end}
""")


def test_a_silent_caller_is_asked_if_still_there_then_hung_up_on(buses: Buses) -> None:
    async def scenario(bus: VoiceBus) -> None:
        result, agent = await run_node(bus, "voice_listen", PATIENT.node("ask").config)
        # 6 waits of 5 s = 30 s of silence, then the check, then 10 s more
        assert said(agent) == ["What is your name?"] + ["Hello?"] * 5 + ["Are you still there?", "[hangs up]"]
        assert result.exit == ""
        assert result.outputs == {"status": "completed", "reason": "the caller said nothing for 40 seconds"}

    run(buses, scenario)


def test_an_answer_to_are_you_still_there_answers_the_question(memory_buses: Buses) -> None:
    async def scenario(bus: VoiceBus) -> None:
        result, agent = await run_node(
            bus, "voice_listen", PATIENT.node("ask").config, [Silence(33), Say("Ann")]
        )
        assert said(agent)[-1] == "Are you still there?"
        assert (result.exit, result.outputs["transcript"]) == ("next", "Ann")

    run(memory_buses, scenario)


def test_the_silence_rule_is_configurable(memory_buses: Buses) -> None:
    settings = {"silence_check_after": "10s", "silence_hangup_after": 4}

    async def scenario(bus: VoiceBus) -> None:
        result, agent = await run_node(
            bus, "voice_listen", PATIENT.node("ask").config, call={"settings": settings}
        )
        assert said(agent) == ["What is your name?", "Hello?", "Are you still there?", "[hangs up]"]
        assert result.outputs["reason"] == "the caller said nothing for 14 seconds"

    run(memory_buses, scenario)


# ---- rapid interruptions ---------------------------------------------------------

IMPATIENT = """
flow: t
settings: {barge_in: true, no_input_timeout: 5s, rapid_interruptions: true}
start: menu
nodes:
  menu:
    type: voice_menu
    prompt: "For your balance, press 1 or say balance. To speak to someone, press 0 or say agent."
    options:
      - {key: "1", phrases: [balance], next: done}
      - {key: "0", phrases: [agent, representative], next: done}
    no_match: [{reprompt: "Please choose again. For your balance, press 1. For an agent, press 0."}]
    no_input: [{next: done}]
  done: {type: end}
"""


def _impatient_caller() -> list[Press]:
    return [Press("7", barge_in=True) for _ in range(4)] + [Press("0")]


def test_rapid_barge_ins_shorten_prompts_and_offer_a_person(buses: Buses) -> None:
    graph = compiled(IMPATIENT)

    async def scenario(bus: VoiceBus) -> None:
        result = await walk(bus, graph, _impatient_caller(), call={"settings": graph.settings})
        spoken = said(result.agent)
        assert len(spoken) == 5 and all(text.startswith("~") for text in spoken[:4])
        assert spoken[4] == ("Press 1 for balance, 0 for agent. To speak to a person, say agent or press 0.")
        assert result.results[0].exit == "options[1].next"

    run(buses, scenario)


def test_without_the_setting_prompts_stay_as_written(memory_buses: Buses) -> None:
    graph = compiled(IMPATIENT.replace("rapid_interruptions: true", "rapid_interruptions: false"))

    async def scenario(bus: VoiceBus) -> None:
        result = await walk(bus, graph, _impatient_caller(), call={"settings": graph.settings})
        assert said(result.agent)[4] == (
            "Please choose again. For your balance, press 1. For an agent, press 0."
        )

    run(memory_buses, scenario)


def test_barge_ins_are_counted_across_nodes(memory_buses: Buses) -> None:
    async def scenario(bus: VoiceBus) -> None:
        call = new_call_id()
        agent = SimulatedAgent(bus, call, [Say(f"stop {n}", barge_in=True) for n in range(4)], clock=CLOCK)
        agent.start()
        for number in range(4):  # four nodes, each cut short
            async with VoiceChannel(bus, call, clock=CLOCK) as channel:
                result = await channel.speak(f"Message {number}.")
                assert result.barged_in and result.by == "speech"
                assert channel.rapid_interruptions == (number == 3)
        async with VoiceChannel(bus, call, clock=CLOCK) as channel:
            assert channel.rapid_interruptions
        await agent.stop()

    run(memory_buses, scenario)


GREETING_TEXT = """
flow: t
settings: {barge_in: true, no_input_timeout: 5s}
start: greet
nodes:
  greet:
    type: voice_greet
    message: "Hello! Welcome to Acme Bank."
    next: menu
  menu:
    type: voice_menu
    prompt: "Press 1 or say balance. Press 0 or say agent."
    options:
      - {key: "1", phrases: [balance, my balance], next: done}
      - {key: "0", phrases: [agent], next: done}
    no_input: [{next: done}]
    no_match: [{next: done}]
  done: {type: end}
"""
