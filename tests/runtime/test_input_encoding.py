"""The spliced call input decodes to exactly the CallInput the default converter would give."""

from __future__ import annotations

from pathlib import Path

from temporalio.converter import DataConverter

from engine.language.project import compile_file
from engine.runtime import messages as m
from engine.runtime.input_encoding import encode_call_input, graph_json

FLOWS = Path(__file__).resolve().parents[2] / "flows"


def test_spliced_payload_round_trips() -> None:
    graph = compile_file(FLOWS / "ivr-menu.yaml")
    call_input = m.CallInput(
        graph=graph,
        call_id="c-1",
        call={"caller_number": "+15551112222"},
        variables={"x": [1, {"y": None}]},
        options=m.CallOptions(max_call_duration=60.0),
    )
    converter = DataConverter.default
    payload = encode_call_input(call_input, converter)
    (decoded,) = converter.payload_converter.from_payloads([payload], [m.CallInput])  # type: ignore[list-item]
    assert decoded == call_input
    plain = converter.payload_converter.to_payloads([call_input])[0]
    assert len(payload.data) == len(plain.data)  # type: ignore[union-attr]


def test_graph_json_is_reused_per_version() -> None:
    graph = compile_file(FLOWS / "voicemail.yaml")
    assert graph_json(graph) is graph_json(graph)
