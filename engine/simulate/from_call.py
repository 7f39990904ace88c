"""A recorded call becomes a conversation test: ``voxflow test --from-call CALL_ID``.

From the call's record (engine.server.records): the caller's side as turns
(what they said, with the recogniser's confidence; keys pressed; questions
left unanswered; cutting into a prompt; hanging up), what the agent said
between them, what the outside services answered (web APIs, models,
databases, ... as recorded when the call ran), and the path the call
took and how it ended, as expectations. The test is written beside the flow
(``flows/tests/<flow>.call-<id>.test.yaml``); on the version the call ran it
passes, and on a changed flow it shows where the call would now go another way.

Masking (``--mask``) for calls with personal data: the caller's and the called
number become example numbers; runs of 4 or more digits (account numbers,
PINs, card numbers, phone numbers) become zeros in what the caller said and
pressed and in the services' answers, and match any digits in what the agent
said; the caller's free speech becomes the phrase of the flow it matched (what
decides the path), or "[masked]" when it matched none.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from engine.core.errors import VoxflowError
from engine.language.compile import FlowGraph
from engine.language.schema import E164_PATTERN
from engine.simulate.conversation import flows_of
from engine.voice.matching import match_phrases

INTERRUPTED = " [interrupted]"  # engine.server.recorder marks a prompt cut short so
MASKED_CALLER = "+15550100000"
MASKED_CALLED = "+15550100001"
MASKED_WORDS = "[masked]"
_LONG_NUMBER = re.compile(r"\d{4,}")
# Records keep a call's path from its own flow only; this many nodes at most.
FINAL_STATUSES = ("completed", "user_hangup", "timeout", "failed", "transferred")


@dataclass(frozen=True)
class ExportedTest:
    path: Path
    text: str
    flow_id: str
    call_version: str
    flow_version: str

    @property
    def flow_changed(self) -> bool:
        return self.call_version != self.flow_version


async def export_call(
    store: Any, call_id: str, flows: Mapping[str, FlowGraph], mask: bool = False, write: bool = True
) -> ExportedTest:
    """Read call ``call_id`` from ``store`` and write its test beside its flow."""
    record = await store.get_call(call_id)
    if record is None:
        raise VoxflowError(
            f"no call with the id '{call_id}' in the call records. The monitor "
            "page and /api/calls list the recorded calls."
        )
    if record["status"] not in FINAL_STATUSES:
        raise VoxflowError(
            f"the call {call_id} is still {record['status']}; make a test of it once it has ended."
        )
    flow_id = record.get("flow_id") or ""
    graph = flows.get(flow_id)
    if graph is None:
        raise VoxflowError(
            f"the call {call_id} ran the flow '{flow_id}', which is not among "
            f"the flows here ({', '.join(sorted(flows)) or 'none'})."
        )
    turns = [turn.to_json() for turn in await store.transcript(call_id)]
    answers = await store.service_answers(call_id)
    text = call_test_text(record, turns, answers, graph, mask)
    folder = Path(graph.source).parent / "tests"
    path = folder / f"{flow_id}.call-{call_id[:12]}.test.yaml"
    if write:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return ExportedTest(path, text, flow_id, str(record.get("flow_version") or ""), graph.version)


def call_test_text(
    record: Mapping[str, Any],
    transcript: Sequence[Mapping[str, Any]],
    answers: Sequence[Mapping[str, Any]],
    graph: FlowGraph,
    mask: bool,
) -> str:
    """The test file's text (YAML with a header saying where it came from)."""
    phrases = _phrases(graph)
    started = dt.datetime.fromtimestamp(float(record.get("started_at") or 0), dt.UTC)
    test: dict[str, Any] = {
        "name": f"call {record['call_id'][:12]} of {started:%Y-%m-%d %H:%M} UTC ({record['status']})",
        "turns": caller_turns(transcript, record["status"], phrases, mask),
        "expect": {
            "status": record["status"],
            "path": [
                node
                for node in record.get("node_path") or []
                if not node.startswith("~") and node in graph.nodes
            ],
        },
    }
    document: dict[str, Any] = {"flow": graph.flow_id}
    caller, called = str(record.get("caller") or ""), str(record.get("called") or "")
    if re.match(E164_PATTERN, caller):
        document["caller"] = MASKED_CALLER if mask else caller
    if re.match(E164_PATTERN, called):
        document["called"] = MASKED_CALLED if mask else called
    fixed = fixed_answers(answers, graph, mask)
    if fixed:
        document["answers"] = fixed
    document["tests"] = [test]
    version = str(record.get("flow_version") or "")
    header = [
        f"# The call {record['call_id']} to the flow '{graph.flow_id}' (version {version[:12]}),",
        "# replayed: the caller's side as the call went, the outside services' answers as they",
        "# were recorded, and the path the call took. Written by:",
        f"#   voxflow test --from-call {record['call_id']}{' --mask' if mask else ''}",
    ]
    if mask:
        header.append("# Masked: phone numbers, runs of 4+ digits, and words no phrase of the flow matched.")
    body = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
    return "\n".join(header) + "\n" + body


def caller_turns(
    transcript: Sequence[Mapping[str, Any]], status: str, phrases: Sequence[str], mask: bool
) -> list[Any]:
    turns: list[Any] = []
    keys: list[str] = []
    cuts_in = False

    def flush_keys() -> None:
        nonlocal cuts_in
        if keys:
            pressed = "".join(keys)
            turn: dict[str, Any] = {"press": _mask_digits(pressed) if mask else pressed}
            if cuts_in:
                turn["barge_in"] = True
                cuts_in = False
            turns.append(turn)
            keys.clear()

    for line in sorted(transcript, key=lambda t: float(t.get("at") or 0)):
        speaker, kind, text = line.get("speaker"), line.get("kind"), str(line.get("text") or "")
        if speaker == "caller" and kind == "dtmf":
            keys.append(text)
            continue
        flush_keys()
        if speaker == "agent":
            if text.endswith(INTERRUPTED):
                cuts_in = True  # the caller's next turn cut into this prompt
                continue
            turns.append(_agent_turn(text, mask))
        elif kind == "silence":
            turns.append("no_answer")
        elif kind in ("speech", "recording") and text.strip() and text != "[recording]":
            turn: dict[str, Any] = {"caller": _mask_words(text, phrases) if mask else text}
            confidence = line.get("confidence")
            if isinstance(confidence, (int, float)) and confidence < 0.95:
                turn["confidence"] = round(float(confidence), 3)
            if cuts_in:
                turn["barge_in"] = True
                cuts_in = False
            turns.append(turn)
    flush_keys()
    if status == "user_hangup":
        turns.append("hangup")
    return turns


def _agent_turn(text: str, mask: bool) -> dict[str, str]:
    said = " ".join(text.split())
    if mask and _LONG_NUMBER.search(said):
        parts = _LONG_NUMBER.split(said)
        return {"agent_matches": "^" + r"\d+".join(re.escape(p) for p in parts) + "$"}
    return {"agent": said}


def fixed_answers(answers: Sequence[Mapping[str, Any]], graph: FlowGraph, mask: bool) -> dict[str, Any]:
    """Node → what it answered the first time (later runs of the node reuse it)."""
    fixed: dict[str, Any] = {}
    for entry in answers:
        flow_id, node_id = str(entry.get("flow_id") or ""), str(entry.get("node_id") or "")
        key = node_id if flow_id == graph.flow_id else f"{flow_id}/{node_id}"
        if key in fixed or not _known(graph, flow_id, node_id):
            continue
        answer = dict(entry.get("answer") or {})
        if "error" in answer:
            fixed[key] = {"error": str(answer["error"])}
            continue
        value: dict[str, Any] = {"outputs": _masked(answer.get("outputs") or {}, mask)}
        if answer.get("exit", "next") != "next":
            value["exit"] = answer["exit"]
        fixed[key] = value
    return fixed


def _known(graph: FlowGraph, flow_id: str, node_id: str) -> bool:
    return any(flow.flow_id == flow_id and node_id in flow.nodes for flow in flows_of(graph))


def _phrases(graph: FlowGraph) -> list[str]:
    found: list[str] = []
    for flow in flows_of(graph):
        for node in flow.nodes.values():
            found += [str(p) for p in node.config.get("expected_phrases") or ()]
            for option in node.config.get("options") or ():
                if isinstance(option, Mapping):
                    found += [str(p) for p in option.get("phrases") or ()]
    return list(dict.fromkeys(found))


def _mask_words(text: str, phrases: Sequence[str]) -> str:
    match = match_phrases(text, [[phrase] for phrase in phrases]) if phrases else None
    return match.phrase if match is not None else MASKED_WORDS


def _mask_digits(text: str) -> str:
    return _LONG_NUMBER.sub(lambda m: "0" * len(m.group()), text)


def _masked(value: Any, mask: bool) -> Any:
    if not mask:
        return value
    if isinstance(value, str):
        return _mask_digits(value)
    if isinstance(value, Mapping):
        return {k: _masked(v, mask) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v, mask) for v in value]
    return value
