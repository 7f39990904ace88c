"""voxflow test: the examples' conversation tests, a failing expectation, a malformed file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.cli.main import main
from engine.runtime.temporal_server import TemporalSettings
from tests.simulate.support import FLOWS


@pytest.fixture
def on_session_server(monkeypatch: pytest.MonkeyPatch, temporal_settings: TemporalSettings) -> None:
    """voxflow test uses TEMPORAL_ADDRESS when set: the session's server, not one of its own."""
    assert temporal_settings.address is not None
    monkeypatch.setenv("TEMPORAL_ADDRESS", temporal_settings.address)
    monkeypatch.setenv("TEMPORAL_NAMESPACE", temporal_settings.namespace)
    monkeypatch.setenv("NO_COLOR", "1")


def test_k_shows_coverage_only_of_the_flows_its_tests_call(
    on_session_server: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["test", str(FLOWS), "-k", "tells a caller their balance"]) == 0
    out = capsys.readouterr().out
    assert "1 passed, 0 failed" in out
    rows = [
        line.split()[0]
        for line in out.splitlines()
        if line.startswith("  ") and "/" in line and not line.strip().startswith("all")
    ]
    assert rows == ["account-balance"], out  # not ivr-menu, voicemail, ... at 0%


def flows_with_tests(tmp_path: Path, name: str, text: str) -> Path:
    """A copy of the example flows with one conversation test file."""
    folder = tmp_path / "flows"
    shutil.copytree(FLOWS, folder, ignore=shutil.ignore_patterns("tests"))
    (folder / "tests").mkdir()
    (folder / "tests" / name).write_text(text, encoding="utf-8")
    return folder


def test_the_examples_pass_with_every_node_covered(
    on_session_server: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["test", str(FLOWS)]) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out
    assert " 0 failed" in out
    all_row = next(line for line in out.splitlines() if line.strip().startswith("all "))
    nodes = all_row.split()[1]
    reached, total = nodes.split("/")
    assert reached == total, all_row
    for flow in ("account-balance", "ivr-menu", "refund-approval", "transfer-to-human", "voicemail"):
        assert f"  {flow}" in out
    assert "node not reached" not in out


BROKEN = """\
flow: account-balance
answers:
  understand: {text: balance}
  lookup: {rows: [{balance: "42.17"}]}
tests:
  - name: the balance is wrong on purpose
    turns:
      - agent_contains: How can I help
      - caller: my balance please
      - agent: Your current balance is $99.00.
    expect:
      status: transferred
      variables: {account: {balance: "99.00"}}
"""


def test_a_broken_expectation_fails_with_expected_and_actual(
    on_session_server: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = flows_with_tests(tmp_path, "account-balance.test.yaml", BROKEN)
    assert main(["test", str(folder), "--no-coverage"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  the balance is wrong on purpose" in out
    assert 'expected the agent to say "Your current balance is $99.00."' in out
    assert 'but after the caller said "my balance please", the agent said:' in out
    assert '"Your current balance is $42.17."' in out
    assert "expected the call to end as transferred, but it ended as completed" in out
    assert 'expected \'account.balance\' to be "99.00" (text), but it was "42.17" (text)' in out
    assert "path: greet → ask → understand → route → lookup → tell → goodbye" in out
    assert "0 passed, 1 failed" in out


MALFORMED = """\
flow: account-balance
tests:
  - name: misspelled things
    turns:
      - agent: Hello there! Welcome to Acme Bank.
      - caler: my balance
      - press: 12x
    expect:
      path: [greet, asks]
"""


def test_a_malformed_test_file_gets_source_mapped_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = flows_with_tests(tmp_path, "bad.test.yaml", MALFORMED)
    assert main(["test", str(folder)]) == 1
    err = capsys.readouterr().err
    where = f"{folder / 'tests' / 'bad.test.yaml'}"
    assert f"{where}:6:9  tests[0].turns[1].caler" in err
    assert "error: 'caler' is not part of a turn." in err
    assert "hint: Did you mean 'caller'?" in err
    assert f"{where}:7:16  tests[0].turns[2].press" in err
    assert f"{where}:9:21  tests[0].expect.path[1]" in err
    assert "hint: Did you mean 'ask'?" in err
    assert "error: 3 problems in" in err


def test_no_tests_is_a_plain_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test", str(tmp_path)]) == 1
    assert "no conversation tests found" in capsys.readouterr().err
