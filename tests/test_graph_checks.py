"""The checks that look at a flow (or several) as a whole."""

from __future__ import annotations

from pathlib import Path

from engine.core.errors import Diagnostic
from engine.language.project import check_paths

HEAD = "flow: {name}\nstart: a\nnodes:\n"


def diagnostics(tmp_path: Path, files: dict[str, str]) -> list[Diagnostic]:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return check_paths([tmp_path]).diagnostics


def codes(found: list[Diagnostic]) -> list[tuple[str, int, str]]:
    return [(d.code, d.line, d.severity.value) for d in found]


def test_a_loop_with_no_way_out_can_never_end(tmp_path: Path) -> None:
    found = diagnostics(
        tmp_path,
        {
            "f.yaml": HEAD.format(name="f")
            + (
                "  a: {type: voice_speak, message: hi, next: b}\n"
                "  b: {type: voice_speak, message: again, next: c}\n"
                "  c: {type: voice_speak, message: and again, next: b}\n"
            )
        },
    )
    assert ("never-ends", 4, "error") in codes(found)
    never = next(d for d in found if d.code == "never-ends")
    assert "'a'" in never.message and "voice_hangup" in never.hint


def test_a_loop_that_never_waits_is_a_warning_unless_bounded(tmp_path: Path) -> None:
    loop = HEAD.format(name="f") + (
        "  a: {type: set, values: {n: 1}, next: b}\n"
        "  b:\n    type: condition\n    branches: [{if: n > 3, next: c}]\n    else: a\n"
        "  c: {type: end}\n"
    )
    found = diagnostics(tmp_path, {"f.yaml": loop})
    assert [d.code for d in found] == ["unbounded-loop"]
    assert "a → b → a" in found[0].message
    bounded = loop.replace("values: {n: 1}, next: b}", "values: {n: 1}, next: b, max_visits: 5}")
    assert diagnostics(tmp_path, {"f.yaml": bounded}) == []


def test_a_loop_through_a_question_needs_no_bound(tmp_path: Path) -> None:
    found = diagnostics(
        tmp_path,
        {
            "f.yaml": HEAD.format(name="f")
            + (
                "  a:\n    type: voice_listen\n    save_as: answer\n"
                "    no_input: [{next: a}]\n    next: b\n"
                "  b:\n    type: condition\n    branches: [{if: answer.transcript == 'stop', next: c}]\n"
                "    else: a\n"
                "  c: {type: end}\n"
            )
        },
    )
    assert found == []


def test_missing_handlers_are_warnings(tmp_path: Path) -> None:
    found = diagnostics(
        tmp_path,
        {
            "f.yaml": HEAD.format(name="f")
            + (
                "  a:\n    type: voice_menu\n    prompt: Press 1\n    options: [{key: '1', next: b}]\n"
                "  b: {type: end}\n"
            )
        },
    )
    assert sorted(d.code for d in found) == ["missing-no-input", "missing-no-match"]
    assert all(d.severity.value == "warning" and d.line == 4 for d in found)


def test_last_handler_without_next_is_a_warning(tmp_path: Path) -> None:
    found = diagnostics(
        tmp_path,
        {
            "f.yaml": HEAD.format(name="f")
            + (
                "  a:\n    type: voice_dtmf_collect\n    next: b\n"
                "    no_input: [{reprompt: Hello?}]\n    no_match: [{next: b}]\n"
                "  b: {type: end}\n"
            )
        },
    )
    assert codes(found) == [("handler-without-next", 7, "warning")]


def test_variables_nothing_sets_are_errors_with_a_suggestion(tmp_path: Path) -> None:
    found = diagnostics(
        tmp_path,
        {
            "f.yaml": HEAD.format(name="f")
            + (
                "  a: {type: http_request, url: 'https://x.test/${caller_number}', save_as: account,"
                " next: b}\n"
                "  b: {type: voice_speak, message: 'You have ${acount.balance}', next: c}\n"
                "  c: {type: voice_hangup, farewell_message: 'Bye ${caller_name}'}\n"
                "variables:\n  caller_name: {default: there}\n"
            )
        },
    )
    assert codes(found) == [("unset-variable", 5, "error")]
    assert "Did you mean 'account'?" in found[0].hint


def test_variable_set_only_on_a_later_path_is_named_as_such(tmp_path: Path) -> None:
    found = diagnostics(
        tmp_path,
        {
            "f.yaml": HEAD.format(name="f")
            + (
                "  a: {type: voice_speak, message: 'Total ${total}', next: b}\n"
                "  b: {type: set, values: {total: 5}, next: c}\n"
                "  c: {type: end}\n"
            )
        },
    )
    assert [d.code for d in found] == ["unset-variable"]
    assert "no path to this node sets it first" in found[0].message


def test_subflows_must_exist_and_must_not_call_each_other_in_a_circle(tmp_path: Path) -> None:
    def caller(name: str, callee: str) -> str:
        return HEAD.format(name=name) + (
            f"  a: {{type: subflow, flow: {callee}, next: b}}\n  b: {{type: end}}\n"
        )

    found = diagnostics(
        tmp_path,
        {
            "one.yaml": caller("one", "two"),
            "two.yaml": caller("two", "one"),
            "three.yaml": caller("three", "tow"),
        },
    )
    by_code = {d.code: d for d in found}
    assert "one → two → one" in by_code["subflow-cycle"].message
    assert by_code["unknown-flow"].file.endswith("three.yaml")
    assert by_code["unknown-flow"].hint == "Did you mean 'two'?"


def test_two_files_with_one_flow_name(tmp_path: Path) -> None:
    text = HEAD.format(name="same") + "  a: {type: end}\n"
    found = diagnostics(tmp_path, {"a.yaml": text, "b.yaml": text})
    assert [d.code for d in found] == ["duplicate-flow"]


def test_same_phrase_on_two_options(tmp_path: Path) -> None:
    found = diagnostics(
        tmp_path,
        {
            "f.yaml": HEAD.format(name="f")
            + (
                "  a:\n    type: voice_menu\n    prompt: Say something\n"
                "    options:\n      - {phrases: [Balance], next: b}\n      - {phrases: [balance], next: b}\n"
                "    no_input: [{next: b}]\n    no_match: [{next: b}]\n"
                "  b: {type: end}\n"
            )
        },
    )
    assert codes(found) == [("duplicate-phrase", 9, "error")]


def test_triggers_are_checked_against_flows_and_each_other(tmp_path: Path) -> None:
    flow = HEAD.format(name="main") + "  a: {type: end}\n"
    trigger = "number: '+15551230000'\nflow: {flow}\n"
    found = diagnostics(
        tmp_path,
        {
            "main.yaml": flow,
            "triggers/a.yaml": trigger.format(flow="main"),
            "triggers/b.yaml": trigger.format(flow="main"),
            "triggers/c.yaml": "number: '+15551230009'\nflow: mian\n",
            "triggers/d.yaml": (
                "number: '+15551230008'\nflow: main\nbusiness_hours:\n  timezone: Mars/Olympus\n"
                "  schedule: {monday: ['17:00-09:00']}\n  outside_hours: {action: voicemail}\n"
            ),
        },
    )
    by_code = {d.code: d for d in found}
    assert by_code["duplicate-number"].file.endswith("b.yaml")
    assert by_code["unknown-flow"].hint == "Did you mean 'main'?"
    assert by_code["bad-timezone"].line == 4
    assert by_code["bad-hours"].line == 5
    assert "voicemail_flow" in by_code["missing-voicemail-flow"].hint


def test_a_field_the_saving_node_does_not_produce_is_an_error(tmp_path: Path) -> None:
    found = diagnostics(
        tmp_path,
        {
            "f.yaml": HEAD.format(name="f")
            + (
                "  a: {type: voice_listen, prompt: 'Name?', save_as: name, no_input: [{next: c}],"
                " next: b}\n"
                "  b: {type: voice_speak, message: 'Thanks ${name.text}, ${name.transcript}.', next: d}\n"
                "  d: {type: condition, branches: [{if: name.confidnce > 0.5, next: c}], else: c}\n"
                "  c: {type: voice_hangup, farewell_message: 'Bye ${last_error.mesage}'}\n"
            )
        },
    )
    assert [(d.code, d.line, d.severity.value) for d in found] == [
        ("unknown-output", 5, "error"),
        ("unknown-output", 6, "error"),
        ("unknown-output", 7, "error"),
    ]
    assert "node 'a' (voice_listen) saves 'confidence', 'phrase' or 'transcript'" in found[0].message
    assert "not 'text'" in found[0].message
    assert "Did you mean 'confidence'?" in found[1].hint
    assert "Did you mean 'message'?" in found[2].hint


def test_fields_of_open_ended_outputs_and_declared_variables_are_not_checked(tmp_path: Path) -> None:
    found = diagnostics(
        tmp_path,
        {
            "f.yaml": HEAD.format(name="f")
            + (
                "  a: {type: database_query, connection: db, query: 'SELECT 1 AS n', save_as: row,"
                " next: b}\n"
                "  b: {type: voice_speak, message: '${row.n} ${account.balance} ${row.rows}', next: c}\n"
                "  c: {type: voice_hangup}\n"
                "variables:\n  account: {default: {balance: 0}}\n"
            )
        },
    )
    assert not [d for d in found if d.is_error], found


def test_subflow_outputs_must_name_variables_of_the_called_flow(tmp_path: Path) -> None:
    found = diagnostics(
        tmp_path,
        {
            "main.yaml": HEAD.format(name="main")
            + (
                "  a: {type: subflow, flow: survey, outputs: {score: scroe, mood: mood}, next: b}\n"
                "  b: {type: voice_hangup, farewell_message: 'Score ${score}, ${mood}'}\n"
            ),
            "survey.yaml": HEAD.format(name="survey")
            + (
                "  a: {type: set, values: {score: 5}, next: b}\n  b: {type: end}\n"
                "variables:\n  mood: {default: fine}\n"
            ),
        },
    )
    assert [(d.code, d.line) for d in found] == [("unknown-subflow-output", 4)]
    assert "the flow 'survey' has no variable 'scroe'" in found[0].message
    assert found[0].hint.startswith("Did you mean 'score'?")


def test_a_loop_through_a_subflow_is_not_called_a_loop_that_never_waits(tmp_path: Path) -> None:
    found = diagnostics(
        tmp_path,
        {
            "main.yaml": HEAD.format(name="main")
            + (
                "  a: {type: subflow, flow: ask, next: b}\n"
                "  b: {type: condition, branches: [{if: answer == 'again', next: a}], else: c}\n"
                "  c: {type: voice_hangup}\n"
                "variables:\n  answer: {default: ''}\n"
            ),
            "ask.yaml": HEAD.format(name="ask")
            + (
                "  a: {type: voice_listen, prompt: 'Again?', save_as: said, no_input: [{next: b}],"
                " next: b}\n  b: {type: end}\n"
            ),
        },
    )
    assert not [d for d in found if d.code == "unbounded-loop"], found


def test_handler_entries_after_one_that_leaves_are_never_used(tmp_path: Path) -> None:
    found = diagnostics(
        tmp_path,
        {
            "f.yaml": HEAD.format(name="f")
            + (
                "  a:\n    type: voice_listen\n    prompt: Name?\n    no_input:\n"
                "      - next: b\n      - reprompt: Sorry?\n    next: b\n"
                "  b: {type: voice_hangup}\n"
            )
        },
    )
    assert codes(found) == [("handler-never-used", 9, "warning")]
    assert "entry 1 already leaves (next: b), so the 1 entry after it is never used" in (found[0].message)
