"""``voxflow worker``: with --embedded it brings its own Temporal server."""

from __future__ import annotations

import asyncio
import re
import socket

import pytest

from engine.cli.main import main
from engine.runtime import messages as m
from engine.runtime.calls import start_call
from engine.runtime.temporal_server import TemporalSettings, connect_client
from tests.runtime.conftest import new_call_id
from tests.runtime.worker_process import WorkerProcess


def test_embedded_worker_runs_a_call_then_stops_cleanly(tmp_path, flows) -> None:
    db_file = tmp_path / "state" / "temporal.db"
    worker = WorkerProcess(
        ["--embedded", "--db-file", str(db_file), "--task-queue", "cli"], env={"TEMPORAL_ADDRESS": ""}
    )
    try:
        line = worker.wait_for("Temporal dev server at", timeout=60)
        address = re.search(r"at (\S+:\d+)", line).group(1)  # type: ignore[union-attr]
        worker.wait_for("voxflow worker ready: task queue 'cli'")

        async def scenario() -> m.CallResult:
            client = await connect_client(TemporalSettings(address=address))
            handle = await start_call(client, flows["wait"], new_call_id(), task_queue="cli")
            await handle.signal("supervisor_approved", {"by": "cli"})
            return await handle.result()

        result = asyncio.run(scenario())
        assert (result.status, result.variables["approval"]) == (m.COMPLETED, {"by": "cli"})
        assert worker.terminate() == 0, "".join(worker.output)
        worker.wait_for("voxflow worker stopped")
        assert db_file.exists()  # the server kept its state where it was told
        host, port = address.split(":")
        with pytest.raises(OSError), socket.create_connection((host, int(port)), timeout=1):
            pass  # the embedded server went away with the worker
    finally:
        worker.close()


def test_worker_without_a_server_says_what_to_do(monkeypatch, capsys) -> None:
    monkeypatch.delenv("TEMPORAL_ADDRESS", raising=False)
    assert main(["worker"]) == 1
    error = capsys.readouterr().err
    assert "set TEMPORAL_ADDRESS=host:port, or run 'voxflow worker --embedded'" in error


def test_worker_rejects_a_missing_config_file(monkeypatch, capsys, tmp_path) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")
    assert main(["worker", "--config", str(tmp_path / "nope.yaml")]) == 1
    assert "no such configuration file" in capsys.readouterr().err
