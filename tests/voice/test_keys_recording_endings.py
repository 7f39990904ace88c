"""voice_dtmf_collect, voice_record, voice_transfer, voice_hangup, and the caller hanging up."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.core.errors import VoxflowError
from engine.voice.bus import VoiceBus
from engine.voice.errors import AgentError
from engine.voice.messages import CollectDtmf, Record, Speak
from engine.voice.simulated_agent import HangUp, Press, Say, Silence
from tests.voice.support import Buses, compiled, run, run_node, said

FLOWS = Path(__file__).parents[2] / "flows"
IVR = compiled((FLOWS / "ivr-menu.yaml").read_text()).node
REFUND = compiled((FLOWS / "refund-approval.yaml").read_text()).node
VOICEMAIL = compiled((FLOWS / "voicemail.yaml").read_text()).node
CARD = IVR("card_digits").config  # num_digits 4, finish_on_key "#", timeout 5s
CARD_PROMPT = CARD["prompt"]


def test_digits_stop_at_num_digits(buses: Buses) -> None:
    async def scenario(bus: VoiceBus) -> None:
        result, agent = await run_node(bus, "voice_dtmf_collect", CARD, [Press("12345")])
        assert (result.exit, result.outputs) == ("next", {"digits": "1234"})
        command = next(c for c in agent.commands if isinstance(c, CollectDtmf))
        assert (command.num_digits, command.finish_on_key, command.timeout) == (4, "#", 5.0)

    run(buses, scenario)


def test_keys_typed_over_the_prompt_are_the_first_digits(memory_buses: Buses) -> None:
    async def scenario(bus: VoiceBus) -> None:
        result, agent = await run_node(bus, "voice_dtmf_collect", CARD, [Press("0042", barge_in=True)])
        assert said(agent) == ["~" + CARD_PROMPT]
        assert result.outputs == {"digits": "0042"}  # leading zeros kept

    run(memory_buses, scenario)


def test_the_finish_key_ends_early(memory_buses: Buses) -> None:
    async def scenario(bus: VoiceBus) -> None:
        result, _ = await run_node(bus, "voice_dtmf_collect", REFUND("ask_amount").config, [Press("250#")])
        assert (result.exit, result.outputs) == ("next", {"digits": "250"})

    run(memory_buses, scenario)


def test_too_few_digits_before_the_inter_digit_timeout_is_no_match(memory_buses: Buses) -> None:
    async def scenario(bus: VoiceBus) -> None:
        result, agent = await run_node(
            bus, "voice_dtmf_collect", CARD, [Press("12"), Silence(6), Press("5678")]
        )
        assert said(agent) == [CARD_PROMPT, "That wasn't four digits. Please try again."]
        assert result.outputs == {"digits": "5678"}

    run(memory_buses, scenario)


def test_inter_digit_timeout(memory_buses: Buses) -> None:
    config = {**CARD, "inter_digit_timeout": 2.0, "num_digits": None, "finish_on_key": ""}

    async def scenario(bus: VoiceBus) -> None:
        # gaps shorter than the inter-digit timeout keep collecting
        result, _ = await run_node(
            bus, "voice_dtmf_collect", {**config, "num_digits": 4}, [Press("1234", gap=1.0)]
        )
        assert result.outputs == {"digits": "1234"}
        # a longer gap ends the input (no num_digits: what came is the answer)
        result, _ = await run_node(bus, "voice_dtmf_collect", config, [Press("12", gap=0.5), Silence(8)])
        assert result.outputs == {"digits": "12"}

    run(memory_buses, scenario)


def test_no_keys_at_all_is_no_input(memory_buses: Buses) -> None:
    async def scenario(bus: VoiceBus) -> None:
        result, agent = await run_node(bus, "voice_dtmf_collect", CARD)
        assert said(agent) == [CARD_PROMPT, "Please type the last four digits of your card."]
        assert result.exit == "no_input[1].next"

    run(memory_buses, scenario)


# ---- recording ---------------------------------------------------------------


def test_record_a_message(buses: Buses) -> None:
    async def scenario(bus: VoiceBus) -> None:
        result, agent = await run_node(
            bus,
            "voice_record",
            VOICEMAIL("record").config,
            [Say("Please call me back about my card.", duration=4)],
        )
        assert result.exit == "next"
        assert result.outputs["transcript"] == "Please call me back about my card."
        assert result.outputs["duration"] == 4
        assert result.outputs["recording_url"].startswith("memory://recordings/")
        record = next(c for c in agent.commands if isinstance(c, Record))
        assert (record.beep, record.finish_on_key, record.max_duration) == (True, "#", 120.0)

    run(buses, scenario)


def test_a_silent_recording_is_no_input(memory_buses: Buses) -> None:
    async def scenario(bus: VoiceBus) -> None:
        result, agent = await run_node(bus, "voice_record", VOICEMAIL("record").config)
        assert said(agent) == [
            "Please leave your message after the beep. Press pound when you are done.",
            "I didn't hear a message. Please speak after the beep.",
        ]
        assert result.exit == "no_input[1].next"

    run(memory_buses, scenario)


# ---- endings -----------------------------------------------------------------


def test_transfer_announces_then_transfers(buses: Buses) -> None:
    async def scenario(bus: VoiceBus) -> None:
        config = {
            "destination": "+15550001111",
            "announce_message": "Connecting you to an agent.",
            "voice": "rachel",
        }
        result, agent = await run_node(bus, "voice_transfer", config, [Say("hi", barge_in=True)])
        assert [line.text for line in agent.transcript if line.speaker == "agent"] == [
            "Connecting you to an agent.",
            "[transfers to +15550001111]",
        ]
        assert next(c for c in agent.commands if isinstance(c, Speak)).interruptible is False
        assert result.exit == ""
        assert result.outputs["status"] == "transferred"

    run(buses, scenario)


def test_a_failed_transfer_fails_the_node(memory_buses: Buses) -> None:
    async def scenario(bus: VoiceBus) -> None:
        from engine.voice.simulated_agent import SimulatedAgent
        from tests.voice.support import CLOCK, execute, new_call_id

        call = new_call_id()
        agent = SimulatedAgent(bus, call, clock=CLOCK, failing_transfers=["+15550001111"])
        agent.start()
        with pytest.raises(AgentError, match="busy"):
            await execute(bus, "voice_transfer", {"destination": "+15550001111"}, call_id=call)
        await agent.stop()

    run(memory_buses, scenario)


def test_a_destination_from_a_variable_is_checked(memory_buses: Buses) -> None:
    async def scenario(bus: VoiceBus) -> None:
        with pytest.raises(VoxflowError, match="neither a phone number"):
            await run_node(
                bus, "voice_transfer", {"destination": "${desk}"}, variables={"desk": "the vip desk"}
            )

    run(memory_buses, scenario)


def test_hangup_says_goodbye_and_ends_the_call(buses: Buses) -> None:
    async def scenario(bus: VoiceBus) -> None:
        result, agent = await run_node(
            bus,
            "voice_hangup",
            {"farewell_message": "Goodbye ${caller_name}!"},
            variables={"caller_name": "Ann"},
        )
        assert said(agent) == ["Goodbye Ann!", "[hangs up]"]
        assert (result.exit, result.outputs["status"]) == ("", "completed")
        assert agent.ended

    run(buses, scenario)


def test_a_caller_hanging_up_mid_question_ends_the_call(buses: Buses) -> None:
    async def scenario(bus: VoiceBus) -> None:
        result, _ = await run_node(bus, "voice_menu", IVR("menu").config, [Silence(2), HangUp()])
        assert result.exit == ""
        assert result.outputs == {"status": "user_hangup", "reason": "the caller hung up"}

    run(buses, scenario)
