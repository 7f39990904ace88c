"""Fixed answers: what a test writes becomes a node's result or its failure."""

from __future__ import annotations

import pytest

from engine.runtime.messages import NodeTask
from engine.simulate.fixtures import (
    CallAnswers,
    FixedAnswerTable,
    FixedFailure,
    MissingAnswer,
    answer_from_data,
    answer_problems,
)


def task(node_id: str, node_type: str, **config: object) -> NodeTask:
    return NodeTask(
        call_id="c1",
        flow_id="f",
        node_id=node_id,
        node_type=node_type,
        config=dict(config),
        variables={"n": 7},
    )


def test_shorthand_answers_become_the_plugins_outputs() -> None:
    """The short form is the plugin's (ANSWER_FIELDS, simulated_outputs), not the engine's."""
    rows = answer_from_data({"rows": [{"balance": 1}, {"balance": 2}]}, "f", "q", "database_query")
    assert rows.result({}).outputs == {
        "balance": 1,
        "rows": [{"balance": 1}, {"balance": 2}],
        "row_count": 2,
    }
    reply = answer_from_data({"text": "hi"}, "f", "l", "llm").result({})
    assert reply.outputs["text"] == "hi" and reply.exit == "next"
    http = answer_from_data({"body": {"ok": True}}, "f", "h", "http_request")
    assert http.result({}).outputs == {
        "status": 200,
        "body": {"ok": True},
        "headers": {},
    }


def test_errors_and_failing_statuses_fail_the_node() -> None:
    down = answer_from_data({"error": "down"}, "f", "h", "http_request", "t.yaml:3")
    with pytest.raises(FixedFailure, match=r"down \(a fixed answer in t.yaml:3\)"):
        down.result({})
    busy = answer_from_data({"status": 503}, "f", "h", "http_request")
    with pytest.raises(FixedFailure, match=r"POST https://x.example.com/7 answered 503"):
        busy.result({"method": "POST", "url": "https://x.example.com/7"})
    given = answer_from_data({"outputs": {"status": 503}}, "f", "h", "http_request")
    assert given.result({}).outputs == {"status": 503}  # outputs in full are taken as they are


def test_answer_problems_are_worded_for_the_node_type() -> None:
    assert answer_problems({"row": []}, "database_query", ("next",)) == [
        ("row", "'row' is not part of an answer for a database_query node; did you mean 'rows'?")
    ]
    assert answer_problems({"text": "x", "exit": "elsewhere"}, "llm", ("next", "on_error"))[0][0] == "exit"
    assert answer_problems({"error": "x", "text": "y"}, "llm", ("next",))[0][0] == "error"
    assert answer_problems({"status": "ok"}, "http_request", ("next",)) == [
        ("status", "'status' is an HTTP status code such as 200 or 503.")
    ]
    assert answer_problems({"rows": 3}, "database_query", ("next",))[0][0] == "rows"
    assert answer_problems({"status": 503}, "http_request", ("next",), {"url": "https://x"}) == []
    # A node with no short form takes its outputs in full.
    assert answer_problems({"status": 200}, "voice_speak", ("next",))[0][0] == "status"


def test_the_table_answers_per_call_and_is_strict_in_tests() -> None:
    table = FixedAnswerTable()
    assert table.answer(task("h", "http_request"), {}) is None  # an unknown call: the plugin runs
    answer = answer_from_data({"text": "yes"}, "f", "l", "llm")
    table.register("c1", CallAnswers({("f", "l"): answer}, strict=True))
    result = table.answer(task("l", "llm"), {})
    assert result is not None and result.outputs["text"] == "yes"
    with pytest.raises(MissingAnswer, match="gives no fixed answer for it"):
        table.answer(task("h", "http_request"), {})
    assert table.answer(task("v", "voice_speak"), {}) is None  # not an outside service
    table.forget("c1")
    assert table.answer(task("l", "llm"), {}) is None
