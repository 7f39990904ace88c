"""A call whose workflow ends without writing its record's end (terminated, timed out in
Temporal) is closed by the server's reconciler, with Temporal's reason."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

from engine.runtime.messages import CallInput, workflow_id
from engine.runtime.workflow import CallFlowWorkflow
from engine.server.telnyx import call_id_for
from tests.server.support import API_TOKEN, harness, read_sse, telnyx_call_id, texml_form
from tests.waiting import wait_until


def test_terminated_and_timed_out_workflows_close_their_records(
    temporal_settings: Any, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with harness(temporal_settings, tmp_path) as h:
            reconciler = h.stack.reconciler
            assert reconciler is not None
            reconciler.quiet_for = 0.0
            events: list[dict[str, Any]] = []
            ready = asyncio.Event()
            reader = asyncio.create_task(
                read_sse(h.http, f"{h.url}/api/events?token={API_TOKEN}", events, ready)
            )
            await asyncio.wait_for(ready.wait(), 5)
            client = h.ctx.temporal_client()

            telnyx_id = telnyx_call_id()
            call_id = call_id_for(telnyx_id)
            status, _ = await h.texml(texml_form(telnyx_id, called="+15550002000"))
            assert status == 200
            await h.wait_for_call(call_id, "active")
            assert await reconciler.once() == []  # running: left alone
            await client.get_workflow_handle(workflow_id(call_id)).terminate(reason="stopped by the operator")
            assert (await h.ctx.records.get_call(call_id))["status"] == "active"
            assert await reconciler.once() == [call_id]
            record = await h.ctx.records.get_call(call_id)
            assert record["status"] == "failed"
            assert "terminated in Temporal: stopped by the operator" in record["reason"]
            assert record["ended_at"] is not None and record["current_node"] is None

            # A workflow started with a Temporal execution timeout, on a queue no worker
            # serves: it never writes anything, and Temporal times it out.
            late = "late" + telnyx_call_id()[3:20]
            graph = h.ctx.library.flow("hold")
            assert graph is not None
            await h.ctx.records.ring(
                late,
                telnyx_call_id=late,
                caller="+1",
                called="+2",
                flow_id="hold",
                flow_version=graph.version,
            )
            handle = await client.start_workflow(
                CallFlowWorkflow.run,
                CallInput(graph=graph, call_id=late),
                id=workflow_id(late),
                task_queue=f"{h.ctx.settings.task_queue}-nobody",
                execution_timeout=timedelta(seconds=1),
            )
            await wait_until(lambda: _ended(handle), interval=0.2, what="Temporal to time the workflow out")
            assert await reconciler.once() == [late]
            record = await h.ctx.records.get_call(late)
            assert record["status"] == "timeout" and "ran out of time" in record["reason"]
            assert await reconciler.once() == []  # closed once

            ended = await wait_until(lambda: _ends(events, 2), what="both calls' call:ended")
            reader.cancel()
            assert ended == {call_id: "failed", late: "timeout"}

    asyncio.run(scenario())


async def _ended(handle: Any) -> bool:
    return bool((await handle.describe()).status.name != "RUNNING")


def _ends(events: list[dict[str, Any]], count: int) -> dict[str, str] | None:
    ended = {e["call_id"]: e["data"]["status"] for e in events if e["type"] == "call:ended"}
    return ended if len(ended) >= count else None
