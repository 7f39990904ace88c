"""subflow nodes run another flow as a child workflow, with inputs and outputs."""

from __future__ import annotations

import asyncio

from temporalio.client import WorkflowExecutionStatus

from engine.runtime import messages as m
from engine.runtime.calls import call_state, hang_up, send_signal, start_call
from tests.runtime.conftest import RuntimeEnv, client_for, new_call_id, run_call
from tests.waiting import wait_until


def test_subflow_inputs_and_outputs(runtime_env: RuntimeEnv, flows) -> None:
    result = run_call(runtime_env, flows["parent"], variables={"x": 21})
    assert result.status == m.COMPLETED
    assert result.path == ["before", "run_child", "after", "done"]
    assert result.variables["y"] == 42
    assert result.variables["stage"] == "after"
    assert result.variables["child_signal"] is None  # the child never set it


def test_signal_reaches_a_waiting_subflow(runtime_env: RuntimeEnv, flows) -> None:
    async def scenario() -> tuple[m.CallSnapshot, m.CallSnapshot, m.CallResult]:
        client = await client_for(runtime_env)
        call_id = new_call_id()
        handle = await start_call(
            client,
            flows["parent"],
            call_id,
            variables={"x": 5, "mode": "wait"},
            task_queue=runtime_env.task_queue,
        )

        async def child_waiting() -> m.CallSnapshot | None:
            parent = await call_state(client, call_id)
            if parent.subflow_workflow_id is None:
                return None
            child = await client.get_workflow_handle(parent.subflow_workflow_id).query(
                m.STATE_QUERY, result_type=m.CallSnapshot
            )
            return child if child.waiting_for == "child_go" else None

        child = await wait_until(child_waiting, what="the subflow to wait")
        parent = await call_state(client, call_id)
        await send_signal(client, call_id, "child_go", {"ok": 1})
        return parent, child, await handle.result()

    parent, child, result = asyncio.run(scenario())
    assert parent.current_node == "run_child"
    assert child.flow_id == "child" and child.variables["a"] == 5
    assert result.status == m.COMPLETED
    assert result.variables["child_signal"] == {"ok": 1}
    assert result.variables["y"] == 10


def test_failing_subflow_takes_on_error(runtime_env: RuntimeEnv, flows) -> None:
    result = run_call(runtime_env, flows["parent"], variables={"mode": "fail"})
    assert (result.status, result.reason) == (m.FAILED, "the child failed")
    assert result.path == ["before", "run_child", "child_failed"]
    message = result.variables["last_error"]["message"]
    assert message.startswith(
        "the node 'run_child' (subflow) failed: the node 'broken' (http_request) failed"
    )


def test_subflow_that_transfers_ends_the_call(runtime_env: RuntimeEnv, flows) -> None:
    result = run_call(runtime_env, flows["parent"], variables={"mode": "transfer"})
    assert (result.status, result.reason) == (m.TRANSFERRED, "handed to a human")
    assert result.path == ["before", "run_child"]


def test_hangup_during_a_subflow_cancels_it(runtime_env: RuntimeEnv, flows) -> None:
    async def scenario() -> tuple[m.CallResult, WorkflowExecutionStatus | None]:
        client = await client_for(runtime_env)
        call_id = new_call_id()
        handle = await start_call(
            client, flows["parent"], call_id, variables={"mode": "wait"}, task_queue=runtime_env.task_queue
        )
        child_id = await wait_until(lambda: _child_id(client, call_id), what="the subflow to start")
        await hang_up(client, call_id)
        result = await handle.result()
        child = await client.get_workflow_handle(child_id).describe()
        return result, child.status

    result, child_status = asyncio.run(scenario())
    assert result.status == m.USER_HANGUP
    assert result.reason == "the caller hung up (at the node 'run_child')"
    assert child_status == WorkflowExecutionStatus.CANCELED


async def _child_id(client, call_id: str) -> str | None:
    return (await call_state(client, call_id)).subflow_workflow_id
