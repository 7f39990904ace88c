"""The example flows are clean, use every node type, and compile to stable versions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cli.main import main
from engine.language.compile import graph_hash
from engine.language.project import check_paths, compile_file
from engine.language.registry import default_registry

ROOT = Path(__file__).resolve().parent.parent
FLOWS = ROOT / "flows"


def test_every_example_validates_with_strict(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--strict", str(FLOWS)]) == 0
    assert "All flows OK" in capsys.readouterr().out


def test_examples_use_every_node_type() -> None:
    result = check_paths([FLOWS])
    used = {node.type for graph in result.flows.values() for node in graph.nodes.values()}
    assert used == set(default_registry().names())


def test_json_report_lists_versions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(FLOWS), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    assert set(report["flows"]) == {
        "account-balance",
        "ivr-menu",
        "voicemail",
        "transfer-to-human",
        "refund-approval",
    }
    assert all(len(version) == 64 for version in report["flows"].values())


def test_triggers_are_loaded() -> None:
    result = check_paths([FLOWS])
    by_number = {t.number: t for t in result.triggers}
    main_line = by_number["+15551230000"]
    assert main_line.flow == "ivr-menu"
    assert main_line.business_hours is not None
    assert main_line.business_hours.schedule["friday"] == ((480, 720), (780, 1020))


def test_version_ignores_comments_and_key_order(tmp_path: Path) -> None:
    original = (FLOWS / "voicemail.yaml").read_text(encoding="utf-8")
    reordered = original.replace("    beep: true\n", "").replace(
        "    type: voice_record\n", "    type: voice_record\n    beep: true   # a comment\n"
    )
    assert reordered != original
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "voicemail.yaml").write_text(original)
    (tmp_path / "b" / "voicemail.yaml").write_text(reordered)
    first = compile_file(tmp_path / "a" / "voicemail.yaml")
    second = compile_file(tmp_path / "b" / "voicemail.yaml")
    assert first.version == second.version
    assert graph_hash(first) == first.version


def test_version_changes_when_a_prompt_changes(tmp_path: Path) -> None:
    text = (FLOWS / "voicemail.yaml").read_text(encoding="utf-8")
    (tmp_path / "voicemail.yaml").write_text(text.replace("We didn't get", "We did not get"))
    assert compile_file(tmp_path / "voicemail.yaml").version != compile_file(FLOWS / "voicemail.yaml").version


def test_subflows_are_compiled_in_and_pinned() -> None:
    graph = compile_file(FLOWS / "ivr-menu.yaml")
    assert set(graph.subflows) == {"account-balance", "transfer-to-human", "voicemail"}
    assert graph.subflows["voicemail"].version == compile_file(FLOWS / "voicemail.yaml").version
