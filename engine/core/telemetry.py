"""Traces of one call across processes (OpenTelemetry), exported over OTLP when asked for.

On only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (then spans go there over
OTLP/HTTP protobuf, batched; ``OTEL_SERVICE_NAME`` names the process);
otherwise nothing is set up and nothing is spent: no interceptor, no span.

One call's tree, with ``voxflow.call_id`` on every span:

- the server: a span per webhook request (engine.server.app's middleware); a
  TeXML webhook puts the call id in the trace's baggage before the call starts;
- Temporal: ``StartWorkflow`` / ``RunWorkflow`` / ``StartActivity`` / ``RunActivity``
  spans from temporalio's TracingInterceptor (on every client made by
  engine.runtime.temporal_server.connect_client, and so on its workers), the trace
  context carried in Temporal's headers from the server to the worker;
- each node: a ``node <id>`` span inside its activity;
- the agent: ``agent speak`` / ``agent listen`` ... spans, children of the node
  that sent the command: the voice bus command carries a W3C ``traceparent``.
  TTS latency (command to first audio) and STT latency (the caller's last sound
  heard to the final transcript) are attributes on them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

CALL_ID = "voxflow.call_id"
_lock = threading.Lock()
_state: dict[str, Any] = {}


def enabled() -> bool:
    """Tracing is on in this process (OTEL_EXPORTER_OTLP_ENDPOINT is set)."""
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def _provider() -> Any:
    """The process's tracer provider, set up once (None when tracing is off)."""
    if not enabled():
        return None
    with _lock:
        if "provider" not in _state:
            from opentelemetry import trace
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            name = os.environ.get("OTEL_SERVICE_NAME") or "voxflow"
            provider = TracerProvider(resource=Resource.create({"service.name": name}))
            provider.add_span_processor(_call_id_processor())
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
            trace.set_tracer_provider(provider)
            _state["provider"] = trace.get_tracer_provider()
        return _state["provider"]


def tracer() -> Any:
    from opentelemetry import trace

    provider = _provider()
    return (provider or trace).get_tracer("voxflow")


def temporal_interceptors() -> list[Any]:
    """Temporal's tracing interceptor when tracing is on (client and its workers)."""
    if not enabled():
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor(tracer())]


@contextmanager
def span(name: str, attributes: Mapping[str, Any] | None = None, call_id: str | None = None) -> Iterator[Any]:
    """A span as the current one (a no-op when tracing is off); ``call_id`` also goes in
    the baggage, so spans started under it in other processes carry it."""
    if not enabled():
        yield None
        return
    from opentelemetry import baggage, context

    token = None
    if call_id:
        token = context.attach(baggage.set_baggage(CALL_ID, call_id))
    try:
        attrs = {**(attributes or {}), **({CALL_ID: call_id} if call_id else {})}
        with tracer().start_as_current_span(name, attributes=attrs) as current:
            yield current
    finally:
        if token is not None:
            context.detach(token)


def traceparent() -> str:
    """The current span's W3C traceparent ('' when tracing is off or no span is current)."""
    if not enabled():
        return ""
    from opentelemetry.propagate import inject

    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier.get("traceparent", "")


def start_child(name: str, parent: str, attributes: Mapping[str, Any]) -> Any:
    """A span (not made current) whose parent is the ``traceparent`` given; None when off."""
    if not enabled() or not parent:
        return None
    from opentelemetry.propagate import extract

    return tracer().start_span(name, context=extract({"traceparent": parent}), attributes=dict(attributes))


def flush() -> None:
    provider = _state.get("provider")
    if provider is not None and hasattr(provider, "force_flush"):
        provider.force_flush()


def _call_id_of(span: Any, parent_context: Any) -> str | None:
    from opentelemetry import baggage

    found = baggage.get_baggage(CALL_ID, parent_context)
    if found:
        return str(found)
    attributes = getattr(span, "attributes", None) or {}
    workflow = attributes.get("temporalWorkflowID")
    if isinstance(workflow, str) and workflow.startswith("call-"):
        return workflow[len("call-") :].split("/", 1)[0]  # a subflow: call-<id>/<step>-<flow>
    return None


def _call_id_processor() -> Any:
    """A span processor that puts ``voxflow.call_id`` on every span of a call: from the
    baggage, or from the Temporal workflow id (``call-<id>``) on Temporal's own spans."""
    from opentelemetry.sdk.trace import SpanProcessor

    class CallIdProcessor(SpanProcessor):  # type: ignore[misc]
        def on_start(self, span: Any, parent_context: Any = None) -> None:
            if CALL_ID in (getattr(span, "attributes", None) or {}):
                return
            call_id = _call_id_of(span, parent_context)
            if call_id:
                span.set_attribute(CALL_ID, call_id)

    return CallIdProcessor()
