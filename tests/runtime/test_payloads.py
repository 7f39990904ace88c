"""The run_node activity's task and outcome cross Temporal as plain dicts (messages.flat_data).

They must stay the very payloads temporalio would make of the dataclasses, so
that saved histories replay and anything reading them (engine.simulate.trace,
an older worker) sees no difference.
"""

from __future__ import annotations

from dataclasses import asdict

from temporalio.converter import DataConverter

from engine.runtime import messages as m

CONVERTER = DataConverter.default.payload_converter


def _task() -> m.NodeTask:
    return m.NodeTask(
        call_id="c1",
        flow_id="f",
        node_id="lookup",
        node_type="database_query",
        config={
            "connection": "main",
            "query": "SELECT :n",
            "params": {"n": "${n}"},
            "retry": {"max_attempts": 3},
        },
        variables={"n": 7, "row": {"rows": [{"a": 1}], "row_count": 1}, "name": "Ann"},
        call={"caller_number": "+15550100", "settings": {"voice": "en-US"}},
        max_attempts=3,
        timeout=12.5,
        record=True,
        walked=["start", "lookup"],
    )


def test_flat_data_is_the_payload_temporalio_makes_of_the_dataclass() -> None:
    outcome = m.NodeOutcome(exit="found", outputs={"a": 1, "rows": [{"a": 1}]}, variables={"x": None})
    for value in (_task(), outcome):
        assert m.flat_data(value) == asdict(value)
        assert CONVERTER.to_payloads([m.flat_data(value)]) == CONVERTER.to_payloads([value])


def test_from_flat_data_rebuilds_what_the_converter_would() -> None:
    payload = CONVERTER.to_payloads([_task()])[0]
    data = CONVERTER.from_payloads([payload])[0]
    assert m.from_flat_data(m.NodeTask, data) == CONVERTER.from_payloads([payload], [m.NodeTask])[0]
    assert m.from_flat_data(m.NodeTask, data) == _task()


def test_from_flat_data_ignores_fields_it_does_not_know_and_fills_defaults() -> None:
    # A newer workflow may send fields an older worker does not have, and an
    # older one may leave out fields added since: both still run.
    outcome = m.from_flat_data(m.NodeOutcome, {"exit": "next", "added_later": 1})
    assert outcome == m.NodeOutcome(exit="next")
    task = m.from_flat_data(
        m.NodeTask,
        {
            "call_id": "c1",
            "flow_id": "f",
            "node_id": "n",
            "node_type": "http_request",
            "config": {},
            "variables": {},
        },
    )
    assert task.max_attempts == 1 and task.walked == [] and task.record is False
