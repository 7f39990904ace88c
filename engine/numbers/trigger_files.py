"""The trigger file ``voxflow numbers assign`` writes (or brings up to date) for review in git.

A new trigger is ``flows/triggers/<digits>.yaml`` with the number, the flow and
the carrier. A number that already has a trigger keeps its file, comments and
options: only its top-level ``flow:`` and ``carrier:`` lines change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from engine.core.errors import VoxflowError
from engine.core.suggest import as_sentence, did_you_mean
from engine.language.project import ProjectCheck, check_paths
from engine.language.schema import SCHEMA_BASE_URL
from engine.language.triggers import Trigger


@dataclass(frozen=True)
class TriggerWrite:
    path: Path
    changed: bool
    created: bool


def read_project(flows_dir: Path) -> ProjectCheck:
    if not flows_dir.is_dir():
        raise VoxflowError(
            f"{flows_dir}: no such folder of flows (use --flows, or run this in "
            "the folder that holds flows/)."
        )
    return check_paths([flows_dir])


def trigger_for(project: ProjectCheck, number: str) -> Trigger | None:
    return next((t for t in project.triggers if t.number == number), None)


def write_trigger(flows_dir: Path, number: str, flow: str, carrier: str) -> TriggerWrite:
    project = read_project(flows_dir)
    if flow not in project.flow_files:
        hint = as_sentence(did_you_mean(flow, set(project.flow_files))) or (
            "Use the 'flow:' name written at the top of a flow file."
        )
        raise VoxflowError(
            f"there is no flow named '{flow}' in {flows_dir} (or it has errors: "
            f"run `voxflow validate {flows_dir}`). {hint}"
        )
    existing = trigger_for(project, number)
    if existing is not None:
        path = Path(existing.source)
        if existing.flow == flow and existing.carrier == carrier:
            return TriggerWrite(path, changed=False, created=False)
        text = path.read_text(encoding="utf-8")
        text = _set_line(text, "flow", flow, after=None)
        text = _set_line(text, "carrier", carrier, after="flow")
        path.write_text(text, encoding="utf-8")
        return TriggerWrite(path, changed=True, created=False)
    path = flows_dir / "triggers" / f"{number.lstrip('+')}.yaml"
    if path.exists():
        raise VoxflowError(
            f"{path} exists but is not a valid trigger for {number}: fix or "
            "remove it, then run the command again."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    local_schema = flows_dir.parent / "schemas" / "trigger.schema.json"
    schema = (
        "../../schemas/trigger.schema.json"
        if local_schema.is_file()
        else f"{SCHEMA_BASE_URL}/trigger.schema.json"
    )
    path.write_text(
        f"# yaml-language-server: $schema={schema}\n"
        f"# Written by `voxflow numbers assign`: calls to {number} through {carrier} run {flow}.\n"
        f'number: "{number}"\n'
        f"flow: {flow}\n"
        f"carrier: {carrier}\n",
        encoding="utf-8",
    )
    return TriggerWrite(path, changed=True, created=True)


def _set_line(text: str, key: str, value: str, after: str | None) -> str:
    lines = text.splitlines(keepends=True)
    pattern = re.compile(rf"^{key}\s*:")
    for index, line in enumerate(lines):
        if pattern.match(line):
            lines[index] = f"{key}: {value}\n"
            return "".join(lines)
    anchor = re.compile(rf"^{after}\s*:") if after else None
    for index, line in enumerate(lines):
        if anchor is not None and anchor.match(line):
            lines.insert(index + 1, f"{key}: {value}\n")
            return "".join(lines)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    return "".join(lines) + f"{key}: {value}\n"
