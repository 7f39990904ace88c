"""Version pinning: a call runs to its end on the flow version it started with."""

from __future__ import annotations

import asyncio
from pathlib import Path

from engine.language.project import compile_file
from engine.runtime import messages as m
from engine.runtime.calls import call_state, send_signal, start_call
from tests.runtime.conftest import FLOWS_DIR, RuntimeEnv, client_for, new_call_id
from tests.waiting import wait_until


def test_a_running_call_keeps_its_version_when_the_file_changes(
    runtime_env: RuntimeEnv, tmp_path: Path
) -> None:
    flow_file = tmp_path / "wait.yaml"
    original = (FLOWS_DIR / "wait.yaml").read_text(encoding="utf-8")
    flow_file.write_text(original.replace("timeout: 1s", "timeout: 30s"), encoding="utf-8")
    old = compile_file(flow_file)

    async def scenario() -> tuple[m.CallSnapshot, m.CallResult, str]:
        client = await client_for(runtime_env)
        call_id = new_call_id()
        handle = await start_call(client, old, call_id, task_queue=runtime_env.task_queue)
        await wait_until(lambda: _waiting(client, call_id), what="the call to wait")
        # The author edits the flow while the call waits, and it is reloaded.
        flow_file.write_text(
            original.replace("timeout: 1s", "timeout: 30s").replace(
                "reason: approved", "reason: approved by the new version"
            ),
            encoding="utf-8",
        )
        new = compile_file(flow_file)
        snapshot = await call_state(client, call_id)
        await send_signal(client, call_id, "supervisor_approved", {"ok": True})
        return snapshot, await handle.result(), new.version

    snapshot, result, new_version = asyncio.run(scenario())
    assert new_version != old.version
    assert snapshot.flow_version == old.version
    assert (result.flow_version, result.reason) == (old.version, "approved")


async def _waiting(client, call_id: str) -> bool:
    return (await call_state(client, call_id)).waiting_for == "supervisor_approved"
