"""The README's first flow and its error example are what voxflow really does."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def first_flow() -> str:
    match = re.search(r"Make a file `flows/hello.yaml`:\n\n```yaml\n(.*?)```", README, re.S)
    assert match
    return match.group(1)


def test_readme_opens_with_the_run_and_test_commands() -> None:
    block = re.search(r"```bash\n(.*?)```", README, re.S)
    assert block
    lines = block.group(1).strip().splitlines()
    assert len(lines) == 2
    assert "voxflow" in lines[0]
    assert "pytest" in lines[1]


def test_first_flow_is_valid_with_strict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "schemas").mkdir()
    (tmp_path / "flows" / "hello.yaml").write_text(first_flow())
    assert main(["validate", "--strict", str(tmp_path / "flows")]) == 0


def test_error_example_is_real(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = first_flow().replace("        next: agent\n    no_input", "        next: agnet\n    no_input")
    (tmp_path / "flows").mkdir()
    path = tmp_path / "flows" / "hello.yaml"
    path.write_text(broken)
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    example = re.search(r"\$ voxflow validate flows/hello.yaml\n(.*?)```", README, re.S)
    assert example
    expected = example.group(1).replace("flows/hello.yaml", str(path))
    assert expected.strip() in out
