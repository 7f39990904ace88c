"""Saved histories of example calls replay on today's CallFlowWorkflow, in the sandbox.

A change to the workflow that would break calls already running fails here.
If the change is deliberate, re-record with ``python -m tests.runtime.record_histories``
(see that module for when that is the right thing to do).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from engine.runtime.messages import workflow_id
from engine.runtime.worker import sandboxed_runner
from engine.runtime.workflow import CallFlowWorkflow

HISTORIES = Path(__file__).parent / "histories"
NAMES = sorted(path.stem for path in HISTORIES.glob("*.json"))


def _replay(text: str) -> None:
    # The workflow id is part of what replays (subflow ids derive from it).
    call_id = _recorded_input(text)["call_id"]
    replayer = Replayer(workflows=[CallFlowWorkflow], workflow_runner=sandboxed_runner())
    asyncio.run(replayer.replay_workflow(WorkflowHistory.from_json(workflow_id(call_id), text)))


def _recorded_input(text: str) -> dict[str, Any]:
    started = json.loads(text)["events"][0]["workflowExecutionStartedEventAttributes"]
    return json.loads(base64.b64decode(started["input"]["payloads"][0]["data"]))  # type: ignore[no-any-return]


def test_the_example_histories_are_all_there() -> None:
    assert NAMES == [
        "basics",
        "continue_as_new",
        "hangup_cancels_node",
        "retry_then_on_error",
        "signal_resumes_wait",
        "subflow",
    ]


@pytest.mark.parametrize("name", NAMES)
def test_saved_history_replays(name: str) -> None:
    _replay((HISTORIES / f"{name}.json").read_text(encoding="utf-8"))


def _with_altered_input(text: str, change: Callable[[dict[str, Any]], None]) -> str:
    """The history with its recorded CallInput changed, as if the code had changed."""
    history = json.loads(text)
    started = history["events"][0]["workflowExecutionStartedEventAttributes"]
    payload = started["input"]["payloads"][0]
    call_input = json.loads(base64.b64decode(payload["data"]))
    change(call_input)
    payload["data"] = base64.b64encode(json.dumps(call_input).encode()).decode()
    return json.dumps(history)


def test_altered_history_raises_nondeterminism_error() -> None:
    def reroute(call_input: dict[str, Any]) -> None:
        # 'greet' now leads to 'post' instead of 'lookup': replay schedules a
        # different node's activity than the one the history recorded.
        greet = call_input["graph"]["nodes"]["greet"]
        greet["config"]["next"] = "post"
        greet["exits"] = [{"name": "next", "target": "post", "label": ""}]

    altered = _with_altered_input((HISTORIES / "basics.json").read_text(encoding="utf-8"), reroute)
    with pytest.raises(NondeterminismError, match="does not match"):
        _replay(altered)
