"""`voxflow serve` and `voxflow dev` as a person runs them."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from engine.cli.main import main
from engine.server.stack import free_port
from tests.server.support import FLOWS
from tests.waiting import wait_until_sync


def test_serve_explains_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("VOXFLOW_API_TOKEN", "TEMPORAL_ADDRESS", "TELNYX_PUBLIC_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert main(["serve", "--flows", str(FLOWS)]) == 1
    assert "set VOXFLOW_API_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv("VOXFLOW_API_TOKEN", "t")
    assert main(["serve", "--flows", str(FLOWS)]) == 1
    assert "TEMPORAL_ADDRESS" in capsys.readouterr().err
    assert main(["serve", "--flows", str(tmp_path / "none")]) == 1
    assert "no such folder" in capsys.readouterr().err
    monkeypatch.setenv("TELNYX_PUBLIC_KEY", "not a key")
    assert main(["serve", "--flows", str(FLOWS)]) == 1
    assert "TELNYX_PUBLIC_KEY is not an Ed25519 public key" in capsys.readouterr().err


def test_dev_runs_everything_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    shutil.copytree(FLOWS, tmp_path / "flows")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VOXFLOW_", "TELNYX_", "TEMPORAL_"))}
    printed = tmp_path / "terminal.txt"
    with printed.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "engine.cli.main", "dev", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def ready() -> bool:  # what a user waits for: everything is up once this is printed
        assert process.poll() is None, printed.read_text()
        return "Stop with Ctrl-C" in printed.read_text()

    try:
        wait_until_sync(ready, timeout=120, interval=0.2, what="voxflow dev to start")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as r:
            assert json.load(r)["flows"] == 4  # greeting, hold, survey, voicemail
        form = b"CallSid=v3:dev-1&From=%2B15557654321&To=%2B15550002000&CallStatus=ringing"
        with urllib.request.urlopen(
            urllib.request.Request(f"http://127.0.0.1:{port}/webhooks/telnyx/texml", data=form)
        ) as response:
            assert b"<Dial><Sip>sip:call-" in response.read()  # unsigned is fine in dev
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)
    output = printed.read_text()
    assert process.returncode == 0, output
    assert "Monitor page: http://127.0.0.1:" in output and "#token=" in output
    assert "voxflow dev stopped." in output
    assert (tmp_path / ".voxflow" / "calls.db").is_file()
