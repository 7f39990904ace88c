"""Encoding a call's workflow input with its flow graph encoded once per version.

Most of a call's input is the compiled flow graph (version pinning: the
workflow receives the graph itself), and it is the same for every call on a
version. Encoding it as JSON on every call is the largest cost between a
webhook arriving and the workflow starting, so the graph's JSON is kept per
version and spliced into each call's payload. The result is exactly what
temporalio's default JSON converter reads back into a CallInput; with any
other payload converter (a custom one set on the client) we do not guess and
encode the usual way.
"""

from __future__ import annotations

import json
from collections import OrderedDict

from temporalio.api.common.v1 import Payload
from temporalio.common import RawValue
from temporalio.converter import AdvancedJSONEncoder, DataConverter, DefaultPayloadConverter

from engine.language.compile import FlowGraph
from engine.runtime.messages import CallInput, flat_data

_CACHED_VERSIONS = 64
_graph_json: OrderedDict[str, bytes] = OrderedDict()


def _dumps(value: object) -> bytes:
    # The same settings as temporalio's JSONPlainPayloadConverter.
    return json.dumps(value, cls=AdvancedJSONEncoder, separators=(",", ":"), sort_keys=True).encode()


def graph_json(graph: FlowGraph) -> bytes:
    """The graph's JSON, computed once per version (a few recent versions are kept)."""
    cached = _graph_json.get(graph.version) if graph.version else None
    if cached is None:
        cached = _dumps(graph)
        if graph.version:
            _graph_json[graph.version] = cached
            while len(_graph_json) > _CACHED_VERSIONS:
                _graph_json.popitem(last=False)
    else:
        _graph_json.move_to_end(graph.version)
    return cached


def encode_call_input(call_input: CallInput, converter: DataConverter) -> Payload | CallInput:
    """A ready payload for ``call_input``, or the input itself for a custom converter."""
    if converter.payload_converter_class is not DefaultPayloadConverter:
        return call_input
    rest = flat_data(call_input)
    del rest["graph"]
    # The options are flat data too; left to the encoder they would go through
    # dataclasses.asdict (a deep copy): half of this function's time.
    rest["options"] = flat_data(call_input.options)
    rest_json = _dumps(rest)  # '{"call":...}'
    data = b'{"graph":' + graph_json(call_input.graph) + b"," + rest_json[1:]
    return Payload(metadata={"encoding": b"json/plain"}, data=data)


def workflow_argument(call_input: CallInput, converter: DataConverter) -> RawValue | CallInput:
    encoded = encode_call_input(call_input, converter)
    return RawValue(encoded) if isinstance(encoded, Payload) else encoded
