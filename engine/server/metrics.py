"""Prometheus metrics on /metrics.

- ``voxflow_active_calls{status}``: calls ringing or active, counted in the
  call records when scraped (so every replica reports the same, true number);
- ``voxflow_node_duration_seconds{node_type,outcome}``: how long nodes take,
  observed from the workers' ``node:finished`` live events (each replica
  sees every event: aggregate with ``max`` across replicas, not ``sum``);
- ``voxflow_webhook_duration_seconds{endpoint,outcome}``: webhook handling time;
- ``voxflow_errors_total{kind}``: refused webhooks (by reason), node and call
  failures, failures of the server itself;
- ``voxflow_calls_total{status}``: calls ended, by status;
- ``voxflow_flow_reload_errors``: flow files with errors after the last reload;
- ``voxflow_missing_variables_total{flow_id}``: variables a template read that the call did
  not have (filled in as empty text; each also a warning on the call's monitor page).

Each app has its own registry, so several apps in one process (tests) do not clash.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST as PROMETHEUS_CONTENT_TYPE

from engine.server import events as ev

__all__ = ["Metrics", "PROMETHEUS_CONTENT_TYPE"]

_NODE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
# Millisecond steps up to 5 ms: a webhook that starts a call on a nearby Temporal
# takes 2-5 ms, and a p50 read from a 2.5-5 ms bucket was off by a tenth.
_WEBHOOK_BUCKETS = (0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25,
                    0.5, 1, 2.5)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.active_calls = Gauge("voxflow_active_calls", "Calls ringing or in progress.",
                                  ["status"], registry=self.registry)
        self.node_duration = Histogram(
            "voxflow_node_duration_seconds", "Time a node took to run, by node type.",
            ["node_type", "outcome"], buckets=_NODE_BUCKETS, registry=self.registry)
        self.webhook_duration = Histogram(
            "voxflow_webhook_duration_seconds", "Time to handle a Telnyx webhook.",
            ["endpoint", "outcome"], buckets=_WEBHOOK_BUCKETS, registry=self.registry)
        self.errors = Counter("voxflow_errors_total", "Errors, by kind.", ["kind"],
                              registry=self.registry)
        self.calls = Counter("voxflow_calls_total", "Calls ended, by status.", ["status"],
                             registry=self.registry)
        self.missing_variables = Counter(
            "voxflow_missing_variables_total",
            "Variables a template read that the call did not have (filled in as empty text).",
            ["flow_id"], registry=self.registry)
        self.reload_errors = Gauge("voxflow_flow_reload_errors",
                                   "Flow and trigger files with errors after the last reload.",
                                   registry=self.registry)

    def observe_event(self, event: ev.LiveEvent) -> None:
        """The hub's listener: node latency, failures and endings from the live events."""
        if event.type == ev.NODE_FINISHED:
            outcome = "ok" if event.data.get("ok") else "failed"
            self.node_duration.labels(str(event.data.get("node_type")), outcome).observe(
                float(event.data.get("seconds") or 0.0))
        elif event.type == ev.CALL_ERROR:
            self.errors.labels("call_error").inc()
        elif event.type == ev.CALL_VARIABLE_MISSING:
            names = event.data.get("names") or [None]
            self.missing_variables.labels(str(event.flow_id or "")).inc(len(names))
        elif event.type == ev.CALL_ENDED:
            self.calls.labels(str(event.data.get("status"))).inc()

    def set_live_counts(self, counts: dict[str, int]) -> None:
        for status, count in counts.items():
            self.active_calls.labels(status).set(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)
