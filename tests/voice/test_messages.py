"""Bus messages: one JSON object each, every type round-trips, unknown things are tolerated."""

from __future__ import annotations

import json

import pytest

from engine.voice import messages as m

COMMANDS: list[m.Command] = [
    m.Speak(request_id="r1", text="Hello", voice="rachel", language="en-US", interruptible=False),
    m.Play(request_id="r2", audio="beep"),
    m.Listen(
        request_id="r3",
        end_silence_ms=700,
        max_duration=12.0,
        no_input_timeout=4.0,
        expected_phrases=("balance", "agent"),
        dtmf=True,
    ),
    m.CollectDtmf(request_id="r4", num_digits=4, finish_on_key="#", timeout=5.0, inter_digit_timeout=2.0),
    m.Record(request_id="r5", max_duration=60.0, beep=True, finish_on_key="#"),
    m.Transfer(request_id="r6", destination="+15550001111"),
    m.Hangup(request_id="r7", reason="done"),
    m.Stop(request_id="r8", target="r3"),
]
EVENTS: list[m.Event] = [
    m.AgentJoined(agent_id="a1"),
    m.AgentLeft(reason="crash"),
    m.CallerLeft(),
    m.SpeechStarted(request_id="r3"),
    m.SpeechPartial(request_id="r3", transcript="my", confidence=0.4),
    m.SpeechComplete(request_id="r3", transcript="my balance", confidence=0.9),
    m.TtsStarted(request_id="r1"),
    m.TtsComplete(request_id="r1"),
    m.TtsInterrupted(request_id="r1", by="dtmf", digit="1"),
    m.Dtmf(request_id="", digit="#"),
    m.RecordComplete(request_id="r5", url="s3://x.wav", transcript="hi", duration=3.5),
    m.TransferComplete(request_id="r6"),
    m.HangupComplete(request_id="r7"),
    m.ErrorEvent(request_id="r6", code="transfer", message="busy"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.TYPE)
def test_commands_round_trip(command: m.Command) -> None:
    text = m.to_json(command)
    assert json.loads(text)["type"] == command.TYPE
    assert m.command_from_json(text) == command


@pytest.mark.parametrize("event", EVENTS, ids=m.message_type)
def test_events_round_trip(event: m.Event) -> None:
    assert m.event_from_json(m.to_json(event)) == event


def test_error_events_carry_their_code_in_the_type() -> None:
    data = json.loads(m.to_json(m.ErrorEvent(request_id="r1", code="tts", message="down")))
    assert data == {"type": "error:tts", "request_id": "r1", "message": "down"}
    assert m.event_from_json('{"type": "error:stt_failed"}') == m.ErrorEvent(code="stt_failed")


def test_wire_format_is_flat_json_with_request_ids() -> None:
    assert json.loads(m.to_json(COMMANDS[2])) == {
        "type": "listen",
        "request_id": "r3",
        "end_silence_ms": 700,
        "max_duration": 12.0,
        "no_input_timeout": 4.0,
        "expected_phrases": ["balance", "agent"],
        "language": None,
        "dtmf": True,
    }


def test_unknown_types_decode_to_none_and_unknown_fields_are_ignored() -> None:
    assert m.event_from_json('{"type": "speech:emotion", "request_id": "x"}') is None
    assert m.command_from_json('{"type": "sing", "request_id": "x"}') is None
    newer = '{"type": "tts:complete", "request_id": "r1", "audio_ms": 1234}'
    assert m.event_from_json(newer) == m.TtsComplete(request_id="r1")


def test_messages_are_frozen() -> None:
    with pytest.raises(AttributeError):
        COMMANDS[0].request_id = "changed"  # type: ignore[misc]
