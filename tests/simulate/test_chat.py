"""voxflow chat, driven from code: typed lines in, what the agent says and the path out."""

from __future__ import annotations

import asyncio

from engine.runtime import messages as m
from engine.runtime.temporal_server import TemporalSettings
from engine.simulate.caller import NoAnswer
from engine.simulate.chat import ChatSession, parse_line
from engine.simulate.conversation_loader import load_answers_file
from engine.simulate.fixtures import CallAnswers
from engine.simulate.session import CallSetup
from engine.voice.simulated_agent import HangUp, Press, Say, Silence
from tests.simulate.support import FLOWS, RecordingView, chat, example_flows

FLOW_GRAPHS = example_flows()


def ivr_setup() -> CallSetup:
    answers = load_answers_file(FLOWS / "tests" / "ivr-menu.answers.yaml", FLOW_GRAPHS["ivr-menu"])
    return CallSetup(called_number="+15551230000", answers=CallAnswers(answers))


def test_typed_lines_become_caller_actions() -> None:
    assert parse_line("  my balance ") is not None
    assert parse_line("my balance").actions == (Say("my balance"),)  # type: ignore[union-attr]
    assert parse_line("#123#").actions == (Press("123#"),)  # type: ignore[union-attr]
    assert parse_line("/silence 6").actions == (Silence(6.0),)  # type: ignore[union-attr]
    assert parse_line("/silence").actions == (NoAnswer(),)  # type: ignore[union-attr]
    assert parse_line("/hangup").actions == (HangUp(),)  # type: ignore[union-attr]
    assert parse_line('/signal go {"ok": 1}').signal == ("go", {"ok": 1})  # type: ignore[union-attr]
    assert parse_line("") is None
    assert "not a chat command" in parse_line("/dance").problem  # type: ignore[union-attr]
    assert "0-9" in parse_line("#12x").problem  # type: ignore[union-attr]


def test_a_menu_choice_by_words_and_a_key_press(temporal_settings: TemporalSettings) -> None:
    async def script(session: ChatSession, view: RecordingView) -> None:
        await view.wait_for("agent", "For your balance, press 1")
        session.type("I lost my card")
        seen = await view.wait_for("agent", "last four digits of your card")
        session.type("#4321")
        await view.wait_for("agent", "Goodbye", after=seen)

    view, session = asyncio.run(chat(temporal_settings, FLOW_GRAPHS["ivr-menu"], ivr_setup(), script))
    agent = view.lines("agent")
    assert "Your card ending in 4321 is blocked. A new one is on its way." in agent
    assert view.lines("node")[:4] == [
        "welcome (voice_greet)",
        "menu (voice_menu)",
        "card_digits (voice_dtmf_collect)",
        "block_card (http_request)",
    ]
    assert session.result is not None and session.result.status == m.COMPLETED
    assert view.lines("end") == ["completed — the call was hung up at 'goodbye'"]


def test_a_key_into_a_subflow_shows_its_nodes(temporal_settings: TemporalSettings) -> None:
    async def script(session: ChatSession, view: RecordingView) -> None:
        await view.wait_for("agent", "For your balance")
        session.type("#1")
        await view.wait_for("agent", "How can I help you today?")
        session.type("my balance please")

    view, session = asyncio.run(chat(temporal_settings, FLOW_GRAPHS["ivr-menu"], ivr_setup(), script))
    assert "Your current balance is $42.17." in view.lines("agent")
    nodes = view.lines("node")
    assert "balance (subflow)" in nodes
    assert "account-balance › lookup (database_query)" in nodes
    # Each agent line comes after the node that said it.
    order = [text for kind, text in view.shown if kind in ("agent", "node")]
    assert order.index("account-balance › tell (voice_speak)") < order.index(
        "Your current balance is $42.17."
    )


def test_silence_brings_the_reprompt_and_hanging_up_ends_the_call(
    temporal_settings: TemporalSettings,
) -> None:
    async def script(session: ChatSession, view: RecordingView) -> None:
        await view.wait_for("agent", "For your balance")
        session.type("/silence")
        await view.wait_for("agent", "Sorry, I didn't hear anything.")
        session.type("/help")
        await view.wait_for("note", "/hangup")
        session.type("/hangup")

    view, session = asyncio.run(chat(temporal_settings, FLOW_GRAPHS["ivr-menu"], ivr_setup(), script))
    assert session.result is not None and session.result.status == m.USER_HANGUP
    assert view.lines("end")[0].startswith("user_hangup — the caller hung up")


def test_a_node_that_cannot_reach_its_service_is_explained(
    temporal_settings: TemporalSettings,
) -> None:
    async def script(session: ChatSession, view: RecordingView) -> None:
        await view.wait_for("agent", "How can I help you today?")
        session.type("balance")

    view, session = asyncio.run(chat(temporal_settings, FLOW_GRAPHS["account-balance"], CallSetup(), script))
    warnings = view.lines("warning")
    assert any(w.startswith("the node 'understand' (llm)") for w in warnings), warnings
    assert any("--answers FILE" in note for note in view.lines("note"))
    assert session.result is not None and session.result.status == m.TRANSFERRED


def test_signals_resume_a_waiting_call(temporal_settings: TemporalSettings) -> None:
    answers = load_answers_file(
        FLOWS / "tests" / "refund-approval.answers.yaml", FLOW_GRAPHS["refund-approval"]
    )

    async def script(session: ChatSession, view: RecordingView) -> None:
        await view.wait_for("agent", "refund amount")
        session.type("#250#")
        await view.wait_for("agent", "Please hold.")
        session.type('/signal supervisor_decision {"approved": true}')

    view, session = asyncio.run(
        chat(
            temporal_settings, FLOW_GRAPHS["refund-approval"], CallSetup(answers=CallAnswers(answers)), script
        )
    )
    assert "Your refund of $250 is approved." in view.lines("agent")
    assert "sent the signal 'supervisor_decision'" in view.lines("note")
