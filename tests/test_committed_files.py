"""Generated files in the repository match what voxflow generates now."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from engine.authoring.node_reference import node_reference
from engine.cli.main import main
from engine.language.registry import default_registry
from engine.language.schema import flow_schema, schema_text, trigger_schema

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("name", "build"), [("flow", flow_schema), ("trigger", None)])
def test_committed_schema_equals_generated(name: str, build: object) -> None:
    schema = flow_schema(default_registry()) if name == "flow" else trigger_schema()
    committed = (ROOT / "schemas" / f"{name}.schema.json").read_text(encoding="utf-8")
    assert committed == schema_text(schema), (
        f"schemas/{name}.schema.json is out of date: run `voxflow schema`"
    )


@pytest.mark.parametrize("name", ["flow", "trigger"])
def test_schema_is_valid_draft_2020_12(name: str) -> None:
    schema = json.loads((ROOT / "schemas" / f"{name}.schema.json").read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    metaschema_validator = jsonschema.Draft202012Validator(jsonschema.Draft202012Validator.META_SCHEMA)
    assert list(metaschema_validator.iter_errors(schema)) == []


def test_schema_command_writes_the_same_files(tmp_path: Path) -> None:
    assert main(["schema", "--out", str(tmp_path)]) == 0
    for name in ("flow", "trigger"):
        written = (tmp_path / f"{name}.schema.json").read_text(encoding="utf-8")
        assert written == (ROOT / "schemas" / f"{name}.schema.json").read_text(encoding="utf-8")


def test_schema_node_enum_comes_from_the_registry() -> None:
    schema = flow_schema(default_registry())
    assert schema["$defs"]["node"]["properties"]["type"]["enum"] == default_registry().names()


def test_committed_node_reference_is_current() -> None:
    committed = (ROOT / "docs" / "nodes.md").read_text(encoding="utf-8")
    assert committed == node_reference(default_registry()), "docs/nodes.md is out of date: run `voxflow docs`"


def test_every_flow_file_points_editors_at_the_schema() -> None:
    for path in (ROOT / "flows").glob("*.yaml"):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first == "# yaml-language-server: $schema=../schemas/flow.schema.json", path
    for path in (ROOT / "flows" / "triggers").glob("*.yaml"):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first == "# yaml-language-server: $schema=../../schemas/trigger.schema.json", path
