"""How a recorded call is written as a conversation test (engine.simulate.from_call)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from engine.language.project import compile_paths
from engine.simulate.conversation_loader import load_tests
from engine.simulate.from_call import call_test_text

FLOWS = Path(__file__).resolve().parents[2] / "flows"


def _record(**changes: Any) -> dict[str, Any]:
    return {
        "call_id": "c0ffee0ddba11cafe0ddba11",
        "status": "transferred",
        "started_at": 1_767_225_600.0,
        "caller": "+15557654321",
        "called": "+15551230001",
        "flow_version": "f" * 64,
        "node_path": ["greet", "ask", "understand", "route", "transfer", "~farewell"],
        **changes,
    }


TRANSCRIPT = [
    {"at": 1, "speaker": "agent", "kind": "speech", "text": "Hello there! Welcome to Acme Bank."},
    {
        "at": 2,
        "speaker": "agent",
        "kind": "speech",
        "text": "How can I help you today? You can ask for your balance, or for an agent. [interrupted]",
    },
    {
        "at": 3,
        "speaker": "caller",
        "kind": "speech",
        "text": "my account 12345678 please agent",
        "confidence": 0.81,
    },
    {"at": 4, "speaker": "caller", "kind": "silence", "text": "[no answer]"},
    {"at": 5, "speaker": "caller", "kind": "dtmf", "text": "4"},
    {"at": 6, "speaker": "caller", "kind": "dtmf", "text": "2"},
    {"at": 7, "speaker": "agent", "kind": "speech", "text": "Your code is 98765432."},
]
ANSWERS = [
    {
        "flow_id": "account-balance",
        "node_id": "understand",
        "node_type": "llm",
        "answer": {"exit": "next", "outputs": {"text": "agent 5551234567", "model": "m"}},
    },
    {
        "flow_id": "account-balance",
        "node_id": "understand",
        "node_type": "llm",
        "answer": {"error": "a later run"},
    },
    {
        "flow_id": "account-balance",
        "node_id": "lookup",
        "node_type": "database_query",
        "answer": {"error": "the database is down"},
    },
]


def test_a_call_is_written_as_turns_answers_and_its_path(tmp_path: Path) -> None:
    graph = compile_paths([str(FLOWS)]).flows["account-balance"]
    text = call_test_text(_record(), TRANSCRIPT, ANSWERS, graph, mask=False)
    data = yaml.safe_load(text)
    assert data["caller"] == "+15557654321" and data["answers"] == {
        "understand": {"outputs": {"text": "agent 5551234567", "model": "m"}},
        "lookup": {"error": "the database is down"},
    }
    test = data["tests"][0]
    assert test["turns"] == [
        {"agent": "Hello there! Welcome to Acme Bank."},
        {"caller": "my account 12345678 please agent", "confidence": 0.81, "barge_in": True},
        "no_answer",
        {"press": "42"},
        {"agent": "Your code is 98765432."},
    ]
    assert test["expect"] == {
        "status": "transferred",
        "path": ["greet", "ask", "understand", "route", "transfer"],
    }
    # It is a test voxflow test reads.
    (tmp_path / "t.test.yaml").write_text(text)
    assert len(load_tests(tmp_path / "t.test.yaml", {"account-balance": graph})) == 1


def test_masking_keeps_what_decides_the_path() -> None:
    graph = compile_paths([str(FLOWS)]).flows["account-balance"]
    text = call_test_text(_record(status="user_hangup"), TRANSCRIPT, ANSWERS, graph, mask=True)
    assert "5557654321" not in text and "12345678" not in text and "98765432" not in text
    data = yaml.safe_load(text)
    turns = data["tests"][0]["turns"]
    assert turns[1]["caller"] == "agent"  # the phrase of the flow it matched
    assert turns[4] == {"agent_matches": r"^Your\ code\ is\ \d+\.$"}
    assert turns[-1] == "hangup"
    assert data["answers"]["understand"]["outputs"]["text"] == "agent 0000000000"
    assert data["caller"] == "+15550100000"
