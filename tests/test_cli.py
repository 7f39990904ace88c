"""`voxflow` as a user meets it: exit codes, colour, output formats."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import validate as validate_command
from engine.cli.main import main

WARNING_ONLY = """\
flow: w
start: a
nodes:
  a:
    type: voice_menu
    prompt: Press 1
    options: [{key: "1", next: b}]
  b: {type: end}
"""


def write(tmp_path: Path, text: str, name: str = "w.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_warnings_pass_but_fail_with_strict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, WARNING_ONLY)
    assert main(["validate", str(path)]) == 0
    assert "All flows OK (1 file, 2 warnings)." in capsys.readouterr().out
    assert main(["validate", "--strict", str(path)]) == 1
    assert "2 warnings in 1 file (warnings count as errors with --strict)." in capsys.readouterr().out


def test_json_format_for_tools(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, WARNING_ONLY.replace("next: b}]", "next: c}]"))
    assert main(["validate", "--format", "json", str(path)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    first = next(d for d in report["diagnostics"] if d["severity"] == "error")
    assert {k: first[k] for k in ("line", "column", "path", "severity", "code")} == {
        "line": 7,
        "column": 32,
        "path": "nodes.a.options[0].next",
        "severity": "error",
        "code": "unknown-target",
    }


def test_missing_path_is_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "nope")]) == 1
    assert "no such file or folder" in capsys.readouterr().err


def test_empty_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path)]) == 1
    assert "No flow files found" in capsys.readouterr().out


def test_unexpected_error_exits_3_with_a_log_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(args: object) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(validate_command, "run", broken)
    assert main(["validate", str(tmp_path)]) == 3
    err = capsys.readouterr().err
    assert "bug in voxflow" in err and "Traceback" not in err
    log = Path(err.split("The details are in ")[1].split(";")[0])
    assert "RuntimeError: boom" in log.read_text()


def test_ctrl_c_exits_130(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(validate_command, "run", interrupted)
    assert main(["validate", str(tmp_path)]) == 130


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 1
    assert "validate" in capsys.readouterr().out


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli.main", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    )


def test_colour_only_when_asked_or_on_a_terminal(tmp_path: Path) -> None:
    path = write(tmp_path, WARNING_ONLY.replace("next: b}]", "next: c}]"))
    plain = run_cli(["validate", str(path)], {"NO_COLOR": "", "FORCE_COLOR": ""})
    assert plain.returncode == 1
    assert "\033[" not in plain.stdout
    coloured = run_cli(["validate", str(path)], {"FORCE_COLOR": "1", "NO_COLOR": ""})
    assert "\033[31;1merror\033[0m" in coloured.stdout
    no_colour = run_cli(["validate", str(path)], {"FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert "\033[" not in no_colour.stdout


def test_each_command_is_imported_only_when_it_runs() -> None:
    """`voxflow --help` and `voxflow validate` must not import the server, Temporal or LiveKit."""
    import importlib
    import subprocess
    import sys

    from engine.cli.main import COMMANDS

    for name, (module_name, help_text) in COMMANDS.items():
        assert importlib.import_module(module_name).HELP == help_text, name
    probe = (
        "import sys; from engine.cli.main import main; code = main(sys.argv[1:]); "
        "heavy = [m for m in ('livekit', 'temporalio', 'aiohttp', 'openai', 'engine.server', "
        "'engine.simulate', 'engine.agent') if m in sys.modules]; print(heavy); sys.exit(code)"
    )
    for args in (["--help"], ["validate", "flows"], ["validate", "--help"]):
        done = subprocess.run(
            [sys.executable, "-c", probe, *args],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().splitlines()[-1] == "[]", (args, done.stdout)
