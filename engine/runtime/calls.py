"""Starting calls and talking to them from outside (the server, tests, the CLI).

A call is the workflow ``call-<call id>``; these helpers wrap the signal and
query names of engine.runtime.messages so callers never spell them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import RawValue, WorkflowIDReusePolicy
from temporalio.converter import DataConverter

from engine.core.errors import VoxflowError
from engine.language.compile import FlowGraph
from engine.runtime import messages as m
from engine.runtime.input_encoding import workflow_argument
from engine.runtime.workflow import CallFlowWorkflow

# Temporal refuses payloads over 2 MB; stay clear of it, since a call's input
# is also carried across continue-as-new with its variables.
MAX_INPUT_BYTES = 1_500_000


async def start_call(
    client: Client,
    graph: FlowGraph,
    call_id: str,
    *,
    call: Mapping[str, Any] | None = None,
    variables: Mapping[str, Any] | None = None,
    options: m.CallOptions | None = None,
    task_queue: str = m.TASK_QUEUE,
    once: bool = False,
    size_checked: bool = False,
) -> WorkflowHandle[CallFlowWorkflow, m.CallResult]:
    """Start the workflow for one call on ``graph`` (the version it will keep).

    With ``once``, the call id can never start a second workflow after the first
    completed (the server: a call is answered once, whatever Telnyx resends); only
    one that was stopped (terminated: its record could not be written) may be started
    again by Telnyx's next delivery.
    ``size_checked``: the caller already knows the input is small enough (the
    server checks each flow version once, and adds only a few call fields), so
    it is not encoded an extra time while a caller waits.
    """
    options = options or m.CallOptions()
    call_input = m.CallInput(
        graph=graph,
        call_id=call_id,
        call=dict(call or {}),
        variables=dict(variables or {}),
        options=options,
    )
    argument = workflow_argument(call_input, client.data_converter)
    if isinstance(argument, RawValue):
        _refuse_if_too_large(call_input, len(argument.payload.data))
    elif not size_checked:
        check_input_size(call_input, client.data_converter)
    # No execution_timeout: the workflow's own timer (options.max_execution_time)
    # ends a call that runs too long, with a farewell and its record closed, as
    # Temporal advises (docs.temporal.io, "Detecting Workflow failures"). A
    # Temporal timeout could only end it silently, leaving its record "active";
    # and it cost each start about 4% more (a timer task on the Temporal server),
    # on the path where a caller waits for the TeXML answer. No static_summary
    # either, for the same reason (user metadata is one more payload to encode
    # and store: ~3% of a start, webhook A/B 4 of 4 paired runs); the workflow's
    # input names the flow and its version, and so does the call record.
    # ``argument`` is the CallInput, possibly already encoded (a RawValue the
    # converter passes through), which the typed overloads do not know about.
    return await client.start_workflow(  # type: ignore[call-overload, no-any-return, misc]
        CallFlowWorkflow.run,
        argument,
        id=m.workflow_id(call_id),
        task_queue=task_queue,
        id_reuse_policy=(
            WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY
            if once
            else WorkflowIDReusePolicy.ALLOW_DUPLICATE
        ),
    )


def check_input_size(call_input: m.CallInput, converter: DataConverter | None = None) -> int:
    """The encoded size of a call's input; a VoxflowError when Temporal would refuse it."""
    payload_converter = (converter or DataConverter.default).payload_converter
    size = sum(len(p.data) for p in payload_converter.to_payloads([call_input]))
    _refuse_if_too_large(call_input, size)
    return size


def _refuse_if_too_large(call_input: m.CallInput, size: int) -> None:
    if size > MAX_INPUT_BYTES:
        raise VoxflowError(
            f"the flow '{call_input.graph.flow_id}' with this call's variables is "
            f"{size / 1e6:.1f} MB once encoded; Temporal accepts at most 2 MB per call. "
            "Shorten long texts in the flow or in the variables passed to the call."
        )


def call_handle(client: Client, call_id: str) -> WorkflowHandle[Any, Any]:
    return client.get_workflow_handle(m.workflow_id(call_id))


async def hang_up(client: Client, call_id: str, reason: str = "", rpc_timeout: float | None = None) -> None:
    """The caller hung up: the running node is cancelled and the call ends as user_hangup."""
    from datetime import timedelta

    await call_handle(client, call_id).signal(
        m.HANGUP_SIGNAL, reason, rpc_timeout=timedelta(seconds=rpc_timeout) if rpc_timeout else None
    )


async def send_signal(client: Client, call_id: str, name: str, payload: Any = None) -> None:
    """Resume the node waiting for the signal ``name`` (kept if none waits yet)."""
    await call_handle(client, call_id).signal(m.SIGNAL_SIGNAL, m.CallSignal(name, payload))


async def send_call_data(
    client: Client, call_id: str, values: Mapping[str, Any], rpc_timeout: float | None = None
) -> None:
    """Caller data learnt after the call began (``caller_carrier``...): set on the call."""
    from datetime import timedelta

    await call_handle(client, call_id).signal(
        m.CALL_DATA_SIGNAL, dict(values), rpc_timeout=timedelta(seconds=rpc_timeout) if rpc_timeout else None
    )


async def send_voice_event(client: Client, call_id: str, event: m.VoiceEvent) -> None:
    await call_handle(client, call_id).signal(m.VOICE_EVENT_SIGNAL, event)


async def call_state(client: Client, call_id: str) -> m.CallSnapshot:
    """The current node, the path so far and the variables of a call."""
    snapshot: m.CallSnapshot = await call_handle(client, call_id).query(
        m.STATE_QUERY, result_type=m.CallSnapshot
    )
    return snapshot
