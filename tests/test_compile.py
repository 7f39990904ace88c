"""Compiling to FlowGraph: exits, settings, durations, immutability, Temporal transport."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import temporalio.converter

from engine.language.compile import FlowGraph, compile_flow
from engine.language.load import load_text
from engine.language.project import check_flow_document
from engine.language.registry import default_registry

FLOW = """\
flow: demo
settings: {voice: rachel, language: en-US, barge_in: false, no_input_timeout: 4s}
start: ask
nodes:
  ask:
    type: voice_menu
    prompt: "Press 1 or say yes."
    voice: adam
    save_as: ask
    options:
      - {key: "1", phrases: ["yes"], next: check}
    no_input: [{reprompt: "Hello?"}, {next: bye}]
    no_match: [{next: bye}]
  check:
    type: condition
    branches:
      - {if: "ask.key == '1'", next: fetch}
    else: bye
  fetch:
    type: http_request
    url: "https://example.com/x"
    timeout: 1m30s
    retry: {max_attempts: 3, backoff: 500ms}
    next: bye
    on_error: bye
  bye:
    type: voice_hangup
"""


def compiled(text: str = FLOW) -> FlowGraph:
    document = load_text(text, "demo.yaml")
    problems = [d for d in check_flow_document(document, default_registry()) if d.is_error]
    assert problems == []
    return compile_flow(document, default_registry())


def test_exits_are_named_by_their_fields_with_labels() -> None:
    graph = compiled()
    exits = {(e.name, e.target, e.label) for e in graph.node("ask").exits}
    assert exits == {
        ("options[0].next", "check", "1 / yes"),
        ("no_input[1].next", "bye", "no input"),
        ("no_match[0].next", "bye", "no match"),
    }
    assert graph.node("check").exit_target("else") == "bye"
    assert graph.node("check").exit_target("branches[0].next") == "fetch"
    assert graph.node("bye").exits == ()


def test_settings_are_inherited_unless_the_node_overrides_them() -> None:
    graph = compiled()
    ask = graph.node("ask").config
    assert ask["voice"] == "adam"
    assert ask["language"] == "en-US"
    assert ask["barge_in"] is False
    assert ask["no_input_timeout"] == 4.0
    assert "voice" not in graph.node("check").config  # logic nodes take no voice settings


def test_durations_become_seconds() -> None:
    fetch = compiled().node("fetch").config
    assert fetch["timeout"] == 90.0
    assert fetch["retry"] == {"max_attempts": 3, "backoff": 0.5}
    assert compiled().settings["no_input_timeout"] == 4.0


def test_graph_is_frozen() -> None:
    graph = compiled()
    with pytest.raises(dataclasses.FrozenInstanceError):
        graph.start = "bye"  # type: ignore[misc]


def test_graph_travels_through_temporal_payload_converter() -> None:
    graph = compiled()
    converter = temporalio.converter.default().payload_converter
    payloads = converter.to_payloads([graph])
    (restored,) = converter.from_payloads(payloads, [FlowGraph])
    assert restored == graph
    assert isinstance(restored.nodes["ask"].exits[0].target, str)


def test_line_numbers_are_kept_but_not_hashed(tmp_path: Path) -> None:
    graph = compiled()
    assert graph.node("fetch").line == 19
    shifted = compiled("\n\n# a comment\n" + FLOW)
    assert shifted.node("fetch").line == 22
    assert shifted.version == graph.version


def test_time_limit_is_the_engine_timeout_not_a_node_types_own() -> None:
    graph = compiled(
        FLOW.replace(
            "  bye:\n",
            (
                "  digits:\n    type: voice_dtmf_collect\n    timeout: 5s\n    next: bye\n"
                "    no_input: [{next: bye}]\n    no_match: [{next: bye}]\n  bye:\n"
            ),
        ).replace("    next: bye\n    on_error: bye\n", "    next: digits\n    on_error: bye\n")
    )
    assert graph.node("fetch").time_limit == 90.0
    assert graph.node("digits").time_limit is None  # its timeout is the wait for each digit
    assert graph.node("digits").config["timeout"] == 5.0
