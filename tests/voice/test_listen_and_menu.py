"""voice_listen and voice_menu through their plugins, with the simulated caller."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.voice.bus import VoiceBus
from engine.voice.messages import Listen, Speak
from engine.voice.simulated_agent import Press, Say, Silence
from tests.voice.support import Buses, compiled, run, run_node, said

LISTEN = compiled("""
flow: t
settings: {voice: rachel, language: en-US, barge_in: true, no_input_timeout: 5s}
start: ask
nodes:
  ask:
    type: voice_listen
    prompt: "How can I help you today?"
    expected_phrases: [balance, my balance, agent]
    end_silence_ms: 700
    max_duration: 10s
    save_as: request
    no_input:
      - reprompt: "Sorry, I didn't hear anything. Say balance, or agent."
      - next: free
    no_match:
      - reprompt: "Say balance, or agent."
      - {say: "Let me get someone.", next: agent}
    next: bye
  free:
    type: voice_listen
    prompt: "Tell me more."
    max_duration: 10s
    next: bye
  agent: {type: voice_transfer, destination: "+15550001111"}
  bye: {type: voice_hangup}
""").node
IVR = compiled((Path(__file__).parents[2] / "flows" / "ivr-menu.yaml").read_text()).node
PROMPT = "How can I help you today?"


def test_listen_takes_the_answer_and_tells_the_agent_how_to_listen(buses: Buses) -> None:
    async def scenario(bus: VoiceBus) -> None:
        result, agent = await run_node(
            bus, "voice_listen", LISTEN("ask").config, [Say("Um, my balance, please.", confidence=0.9)]
        )
        assert result.exit == "next"
        assert result.outputs == {
            "transcript": "Um, my balance, please.",
            "confidence": 0.9,
            "phrase": "my balance",
        }
        listen = next(c for c in agent.commands if isinstance(c, Listen))
        assert (listen.end_silence_ms, listen.max_duration, listen.no_input_timeout) == (700, 10.0, 5.0)
        assert listen.expected_phrases == ("balance", "my balance", "agent")
        assert listen.language == "en-US" and not listen.dtmf
        speak = next(c for c in agent.commands if isinstance(c, Speak))
        assert (speak.text, speak.voice, speak.interruptible) == (PROMPT, "rachel", True)
        # barge-in order: the agent listens before it starts the prompt
        assert agent.commands.index(listen) < agent.commands.index(speak)

    run(buses, scenario)


def test_barge_in_stops_the_prompt_and_keeps_what_was_said(buses: Buses) -> None:
    async def scenario(bus: VoiceBus) -> None:
        result, agent = await run_node(
            bus, "voice_listen", LISTEN("ask").config, [Say("agent", barge_in=True)]
        )
        assert said(agent) == ["~" + PROMPT]
        assert (result.exit, result.outputs["phrase"]) == ("next", "agent")

    run(buses, scenario)


def test_no_input_and_no_match_are_counted_separately_across_the_loop(
    memory_buses: Buses,
) -> None:
    async def scenario(bus: VoiceBus) -> None:
        result, agent = await run_node(
            bus,
            "voice_listen",
            LISTEN("ask").config,
            [
                Say("pizza"),
                Silence(6),
                Say("weather"),
            ],
        )
        assert said(agent) == [
            PROMPT,
            "Say balance, or agent.",  # no_match 1
            "Sorry, I didn't hear anything. Say balance, or agent.",  # no_input 1
            "Let me get someone.",  # no_match 2: say, then go
        ]
        assert result.exit == "no_match[1].next"
        assert result.outputs["transcript"] == "weather"

    run(memory_buses, scenario)


def test_the_second_no_input_leaves_silently(memory_buses: Buses) -> None:
    async def scenario(bus: VoiceBus) -> None:
        result, agent = await run_node(bus, "voice_listen", LISTEN("ask").config)
        assert said(agent) == [PROMPT, "Sorry, I didn't hear anything. Say balance, or agent."]
        assert result.exit == "no_input[1].next"
        assert result.outputs == {"transcript": "", "confidence": None, "phrase": ""}

    run(memory_buses, scenario)


def test_low_confidence_counts_as_no_match_with_the_default_reprompt(memory_buses: Buses) -> None:
    config = LISTEN("free").config

    async def scenario(bus: VoiceBus) -> None:
        result, agent = await run_node(
            bus,
            "voice_listen",
            config,
            [
                Say("I want my balance", confidence=0.3),
                Say("I want my balance", confidence=0.8),
            ],
        )
        assert said(agent) == ["Tell me more.", "Sorry, I didn't catch that. Could you repeat? Tell me more."]
        assert result.outputs["confidence"] == 0.8
        # the threshold comes from the node, or from the flow's settings
        for options in (
            {"config": {**config, "low_confidence_threshold": 0.2}},
            {"call": {"settings": {"low_confidence_threshold": 0.2}}},
        ):
            result, agent = await run_node(
                bus,
                "voice_listen",
                options.get("config", config),
                [Say("I want my balance", confidence=0.3)],
                **({"call": options["call"]} if "call" in options else {}),
            )
            assert result.exit == "next" and said(agent) == ["Tell me more."]

    run(memory_buses, scenario)


def test_an_answer_longer_than_max_duration_is_cut(memory_buses: Buses) -> None:
    words = " ".join(f"word{n}" for n in range(40))

    async def scenario(bus: VoiceBus) -> None:
        result, _ = await run_node(bus, "voice_listen", LISTEN("free").config, [Say(words, duration=20)])
        assert result.outputs["transcript"] == " ".join(words.split()[:20])

    run(memory_buses, scenario)


# ---- menus -------------------------------------------------------------------

MENU_PROMPT = IVR("menu").config["prompt"]


def test_a_key_pressed_during_the_menu_chooses_at_once(buses: Buses) -> None:
    async def scenario(bus: VoiceBus) -> None:
        result, agent = await run_node(bus, "voice_menu", IVR("menu").config, [Press("2", barge_in=True)])
        assert said(agent) == ["~" + MENU_PROMPT]
        assert result.exit == "options[1].next"
        assert result.outputs["key"] == "2"

    run(buses, scenario)


@pytest.mark.parametrize(
    "answer, exit_name, phrase",
    [
        ("Um, I lost card.", "options[1].next", "lost card"),
        ("my BALANCE please", "options[0].next", "my balance"),
        ("leave a message", "options[2].next", "leave a message"),
        ("press zero", "options[3].next", ""),
    ],
)
def test_spoken_menu_answers(memory_buses: Buses, answer: str, exit_name: str, phrase: str) -> None:
    async def scenario(bus: VoiceBus) -> None:
        result, _ = await run_node(bus, "voice_menu", IVR("menu").config, [Say(answer)])
        assert (result.exit, result.outputs["phrase"]) == (exit_name, phrase)

    run(memory_buses, scenario)


def test_a_wrong_key_is_no_match_and_the_handlers_run_in_order(memory_buses: Buses) -> None:
    async def scenario(bus: VoiceBus) -> None:
        result, agent = await run_node(
            bus, "voice_menu", IVR("menu").config, [Press("7"), Say("pizza"), Silence(7), Press("3")]
        )
        assert said(agent) == [
            MENU_PROMPT,
            "Sorry, I didn't catch that.",
            "Please press a key: 1 for balance, 2 for cards, 3 for a message, 0 for an agent.",
            "Sorry, I didn't hear anything.",
        ]
        assert result.exit == "options[2].next"

    run(memory_buses, scenario)


def test_a_silent_caller_goes_to_the_last_no_input_exit(memory_buses: Buses) -> None:
    async def scenario(bus: VoiceBus) -> None:
        result, agent = await run_node(bus, "voice_menu", IVR("menu").config)
        assert said(agent) == [MENU_PROMPT, "Sorry, I didn't hear anything.", "Please press 1, 2, 3 or 0."]
        assert result.exit == "no_input[2].next"

    run(memory_buses, scenario)
