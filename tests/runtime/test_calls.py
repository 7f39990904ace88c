"""Example flows end to end on the real dev server: logic, HTTP, SQL, LLM, errors."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from engine.core.errors import VoxflowError
from engine.plugin_api import NodeContext
from engine.runtime import messages as m
from engine.runtime.calls import check_input_size
from engine.runtime.config import RuntimeConfig
from engine.runtime.service_types import LlmSettings
from engine.runtime.services import RuntimeServices
from plugins import llm
from tests.runtime.conftest import RuntimeEnv, new_call_id, run_call
from tests.runtime.webapp import LLM_KEY


def test_logic_and_http_nodes_run_end_to_end(runtime_env: RuntimeEnv, flows) -> None:
    result = run_call(
        runtime_env,
        flows["basics"],
        variables={
            "base_url": runtime_env.web.url,
            "caller_name": "ada lovelace",
            "amount": 21,
        },
    )
    assert (result.status, result.reason) == (m.COMPLETED, "all good")
    assert result.path == ["greet", "lookup", "check", "post", "done"]
    variables = result.variables
    assert variables["greeting"] == "Hello Ada Lovelace!"
    assert variables["lookup"]["status"] == 200
    assert variables["lookup"]["body"]["query"] == {"who": "caller"}
    assert variables["lookup"]["body"]["header"] == "ada lovelace"
    # A JSON body keeps types where the value is exactly one placeholder.
    assert variables["posted"]["body"]["body"] == {
        "name": "ada lovelace",
        "amount": 21,
        "note": "for ada lovelace",
    }
    assert variables["posted"]["body"]["method"] == "POST"
    assert result.flow_version == flows["basics"].version


def test_retries_then_success(runtime_env: RuntimeEnv, flows) -> None:
    key = new_call_id("flaky")
    result = run_call(
        runtime_env,
        flows["retry"],
        variables={
            "base_url": runtime_env.web.url,
            "key": key,
            "fail": 2,
        },
    )
    assert result.status == m.COMPLETED
    assert result.variables["api"]["body"] == {"ok": True, "attempt": 3}
    assert "recovered" not in result.variables
    assert runtime_env.web.state.count(runtime_env.web.state.hits, key) == 3


def test_retries_exhausted_then_on_error(runtime_env: RuntimeEnv, flows) -> None:
    key = new_call_id("flaky")
    result = run_call(
        runtime_env,
        flows["retry"],
        variables={
            "base_url": runtime_env.web.url,
            "key": key,
            "fail": 10,
        },
    )
    assert result.status == m.COMPLETED
    assert result.path == ["call_api", "recover", "ok"]
    assert result.variables["recovered"] is True
    # Exactly max_attempts tries: the lost-worker allowance is not spent on plugin errors.
    assert runtime_env.web.state.count(runtime_env.web.state.hits, key) == 3
    error = result.variables["last_error"]
    assert error["node"] == "call_api"
    assert "answered 500" in error["message"]


def test_node_timeout_takes_on_error(runtime_env: RuntimeEnv, flows) -> None:
    result = run_call(
        runtime_env,
        flows["slow"],
        variables={
            "base_url": runtime_env.web.url,
            "key": new_call_id("slow"),
            "seconds": 5,
        },
    )
    assert (result.status, result.reason) == (m.COMPLETED, "too slow")
    assert "longer than its time limit of 0.5 seconds" in result.variables["last_error"]["message"]


def test_sql_injection_attempts_are_plain_data(runtime_env: RuntimeEnv, flows) -> None:
    attempts = [
        ("Robert'); DROP TABLE people;--", "x' OR '1'='1"),
        ('"; DELETE FROM people; --', "1; UPDATE people SET note = 'pwned'"),
        (":note", "%(name)s %s ? $1 ${name}"),
    ]
    for name, note in attempts:
        result = run_call(
            runtime_env,
            flows["sql"],
            variables={
                "name": name,
                "note": note,
                "probe": "' OR '1'='1",
            },
        )
        assert (result.status, result.reason) == (m.COMPLETED, "stored and compared as plain data")
        found = result.variables["found"]
        assert (found["name"], found["note"], found["row_count"]) == (name, note, 1)
        assert result.variables["inserted"]["row_count"] == 1
        assert result.variables["probed"]["matches"] == 0  # the probe matched nothing
    with sqlite3.connect(runtime_env.database) as connection:
        rows = connection.execute("SELECT name, note FROM people ORDER BY rowid").fetchall()
    assert rows == attempts  # the table survived, every value stored as written


def test_llm_node_speaks_openai_chat_completions(runtime_env: RuntimeEnv, flows) -> None:
    result = run_call(runtime_env, flows["llm"], variables={"question": "What is my balance?"})
    assert result.status == m.COMPLETED
    assert result.variables["answer"] == {
        "text": "You asked: Customer question: What is my balance?",
        "model": "test-model",
    }
    sent = [
        r for r in runtime_env.web.state.llm_requests if "What is my balance?" in str(r["json"]["messages"])
    ][-1]
    assert sent["auth"] == f"Bearer {LLM_KEY}"
    assert sent["json"] == {
        "model": "test-model",
        "messages": [
            {"role": "system", "content": "You are a bank assistant. Be brief."},
            {"role": "user", "content": "Customer question: What is my balance?"},
        ],
        "temperature": 0.2,
        "max_tokens": 50,
    }


def test_flow_error_handler_runs_and_call_is_failed(runtime_env: RuntimeEnv, flows) -> None:
    result = run_call(
        runtime_env,
        flows["errors"],
        variables={
            "base_url": runtime_env.web.url,
            "key": new_call_id("err"),
        },
    )
    assert result.status == m.FAILED
    assert result.path == ["call_api", "apologise", "bye"]
    assert result.variables["handled"] is True
    assert result.reason.startswith("the node 'call_api' (http_request) failed:")
    assert "answered 500" in result.reason


def test_default_error_handler_apologises_then_fails(runtime_env: RuntimeEnv, flows) -> None:
    result = run_call(
        runtime_env,
        flows["errors_default"],
        variables={
            "base_url": runtime_env.web.url,
            "key": new_call_id("err"),
        },
    )
    assert result.status == m.FAILED
    assert result.path == ["call_api"]
    assert "the node 'call_api' (http_request) failed" in result.reason
    # The apology goes through voice_hangup, which cannot run until the voice bus exists.
    assert "the apology could not be said to the caller" in result.reason
    assert "voice_hangup" in result.reason and "voice bus" in result.reason
    kinds = [event.kind for event in result.events]
    assert kinds.index("node_failed") < kinds.index("farewell_failed")


def test_long_node_heartbeats_past_its_heartbeat_timeout(runtime_env: RuntimeEnv, flows) -> None:
    # The node takes 2.5 s; Temporal declares an activity lost after 1 s without a
    # heartbeat. It completes on its first attempt only because run_node heartbeats.
    key = new_call_id("beat")
    result = run_call(
        runtime_env,
        flows["long"],
        variables={
            "base_url": runtime_env.web.url,
            "key": key,
            "seconds": 2.5,
        },
        options=m.CallOptions(heartbeat_timeout=1.0),
    )
    assert result.status == m.COMPLETED
    assert result.variables["long"]["body"] == {"slept": 2.5, "attempt": 1}
    assert runtime_env.web.state.count(runtime_env.web.state.hits, key) == 1


def test_llm_refused_key_is_a_plain_configuration_error(runtime_env: RuntimeEnv) -> None:
    services = RuntimeServices(
        RuntimeConfig(
            llm=LlmSettings(base_url=f"{runtime_env.web.url}/v1", model="test-model", api_key="wrong")
        )
    )
    config = {"prompt": "hi", "next": "x"}
    with pytest.raises(VoxflowError, match=r"refused the API key: Incorrect API key provided"):
        asyncio.run(_run_llm(services, config))


async def _run_llm(services: RuntimeServices, config: dict) -> object:
    try:
        return await llm.execute(config, NodeContext("c", "ask", {}), services)
    finally:
        await services.close()


def test_call_input_too_large_for_temporal_is_refused(flows) -> None:
    call_input = m.CallInput(graph=flows["basics"], call_id="big", variables={"blob": "x" * 2_000_000})
    with pytest.raises(VoxflowError, match=r"Temporal accepts at most 2 MB per call"):
        check_input_size(call_input)
    assert check_input_size(m.CallInput(graph=flows["basics"], call_id="small")) < 20_000


def test_values_in_a_url_are_encoded_and_cannot_change_its_host(runtime_env: RuntimeEnv, flows) -> None:
    hostile = "+1555/../../admin/delete?all=1#"
    result = run_call(runtime_env, flows["url_safety"], variables={"caller_number": hostile, "where": "a/b"})
    assert (result.status, result.reason) == (m.COMPLETED, "looked up")
    lookup = result.variables["lookup"]["body"]
    path = lookup["raw_path"].split("?")[0]
    assert path == "/echo/callers/%2B1555%2F..%2F..%2Fadmin%2Fdelete%3Fall%3D1%23"
    assert lookup["query"] == {"number": hostile}
    assert result.variables["raw"]["body"]["raw_path"] == "/echo/a/b"  # `| raw`: as written
    # Even `| raw` cannot move the request to another host: the host is written out.
    moved = run_call(
        runtime_env, flows["url_safety"], variables={"caller_number": "..", "where": "@evil.example/x"}
    )
    assert (moved.status, moved.reason) == (m.COMPLETED, "looked up")
    assert moved.variables["raw"]["body"]["raw_path"] == "/echo/@evil.example/x"
    assert moved.variables["lookup"]["body"]["raw_path"] == "/echo/callers/%2E%2E?number=.."


def test_a_variable_missing_at_run_time_is_empty_and_warned(runtime_env: RuntimeEnv, flows) -> None:
    result = run_call(runtime_env, flows["missing_vars"])
    assert (result.status, result.reason) == (m.COMPLETED, "went on")
    assert result.variables["said"] == "Thank you, . Hello friend."
    assert result.variables["api"]["body"]["query"] == {"who": ""}
    warnings = [e for e in result.events if e.kind == m.VARIABLE_MISSING]
    assert [w.node for w in warnings] == ["greet", "call_api"]  # logic node, then activity
    for warning in warnings:
        assert "flow 'missing_vars'" in warning.message
        assert "'name.transcript'" in warning.message
        assert result.variables["call_id"] in warning.message
    clean = run_call(runtime_env, flows["missing_vars"], variables={"maybe": "yes"})
    assert clean.variables["said"] == "Thank you, Ada. Hello Ada."
    assert not [e for e in clean.events if e.kind == m.VARIABLE_MISSING]


def test_a_template_that_would_make_a_huge_value_fails_its_node(runtime_env: RuntimeEnv, flows) -> None:
    small = run_call(runtime_env, flows["huge_text"])
    assert (small.status, small.variables["blob"]) == (m.COMPLETED, "ababab")
    assert small.variables["said"]["body"]["body"] == {"text": "ab" * 9}
    # In the workflow (a set node): refused before anything is built, the call goes on to
    # the error handler instead of retrying a 200 MB payload for ever.
    huge = run_call(runtime_env, flows["huge_text"], variables={"n": 100_000_000})
    assert huge.status == m.FAILED
    assert "longer than voxflow's limit of 65,536 characters" in huge.reason
    assert huge.path == ["grow", "failed"]
    # In an activity (http_request): the same, and not retried.
    late = run_call(runtime_env, flows["huge_text"], variables={"n": 20_000})
    assert late.status == m.FAILED and late.path == ["grow", "say", "failed"]
    assert "longer than voxflow's limit" in late.reason
