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
- ``voxflow_call_duration_seconds{flow,status}``: how long ended calls lasted;
- ``voxflow_node_calls_total{flow,node,outcome}``: ended calls that reached a node
  (``reached``) and that ended there (``ended``: the drop-off), from ``call:ended``;
- ``voxflow_node_answers_total{flow,node,result}``: questions a node asked
  (``asked``), left unanswered (``no_input``) and not understood (``no_match``);
- ``voxflow_recognition_confidence{flow}``: the recogniser's confidence in final answers;
- ``voxflow_tts_latency_seconds`` / ``voxflow_stt_latency_seconds``: the agent's TTS
  latency (command to first audio) and STT latency (the caller's last sound to the
  final transcript), carried on the voice bus events to the worker's ``node:finished``;
  and the seed's ``stt.latency.p95`` / ``tts.latency.p95`` as the gauges
  ``stt_latency_p95`` / ``tts_latency_p95`` (seconds, over the last 1,000 of each).

Each app has its own registry, so several apps in one process (tests) do not clash.
"""

from __future__ import annotations

import math
from collections import deque

from prometheus_client import CONTENT_TYPE_LATEST as PROMETHEUS_CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from engine.server import events as ev

__all__ = ["Metrics", "PROMETHEUS_CONTENT_TYPE"]

_NODE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
# Millisecond steps up to 5 ms: a webhook that starts a call on a nearby Temporal
# takes 2-5 ms, and a p50 read from a 2.5-5 ms bucket was off by a tenth.
_WEBHOOK_BUCKETS = (0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)

LATENCY_WINDOW = 1000
_LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5)
_CALL_BUCKETS = (5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1200, 1800, 3600)
_CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.active_calls = Gauge(
            "voxflow_active_calls", "Calls ringing or in progress.", ["status"], registry=self.registry
        )
        self.node_duration = Histogram(
            "voxflow_node_duration_seconds",
            "Time a node took to run, by node type.",
            ["node_type", "outcome"],
            buckets=_NODE_BUCKETS,
            registry=self.registry,
        )
        self.webhook_duration = Histogram(
            "voxflow_webhook_duration_seconds",
            "Time to handle a Telnyx webhook.",
            ["endpoint", "outcome"],
            buckets=_WEBHOOK_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter("voxflow_errors_total", "Errors, by kind.", ["kind"], registry=self.registry)
        self.calls = Counter(
            "voxflow_calls_total", "Calls ended, by status.", ["status"], registry=self.registry
        )
        self.missing_variables = Counter(
            "voxflow_missing_variables_total",
            "Variables a template read that the call did not have (filled in as empty text).",
            ["flow_id"],
            registry=self.registry,
        )
        self.call_duration = Histogram(
            "voxflow_call_duration_seconds",
            "How long ended calls lasted.",
            ["flow", "status"],
            buckets=_CALL_BUCKETS,
            registry=self.registry,
        )
        self.node_calls = Counter(
            "voxflow_node_calls_total",
            "Ended calls that reached a node (outcome=reached) and that ended there (outcome=ended).",
            ["flow", "node", "outcome"],
            registry=self.registry,
        )
        self.node_answers = Counter(
            "voxflow_node_answers_total",
            "Questions a node asked, and how many had no input or no match.",
            ["flow", "node", "result"],
            registry=self.registry,
        )
        self.confidence = Histogram(
            "voxflow_recognition_confidence",
            "The recogniser's confidence in final answers.",
            ["flow"],
            buckets=_CONFIDENCE_BUCKETS,
            registry=self.registry,
        )
        self.latency = {
            kind: Histogram(
                f"voxflow_{kind}_latency_seconds",
                f"The agent's {kind.upper()} latency.",
                buckets=_LATENCY_BUCKETS,
                registry=self.registry,
            )
            for kind in ("tts", "stt")
        }
        self.latency_p95 = {
            kind: Gauge(
                f"{kind}_latency_p95",
                f"95th percentile of the last {LATENCY_WINDOW} {kind.upper()} latencies, in seconds.",
                registry=self.registry,
            )
            for kind in ("tts", "stt")
        }
        self._recent: dict[str, deque[float]] = {
            kind: deque(maxlen=LATENCY_WINDOW) for kind in ("tts", "stt")
        }
        self.reload_errors = Gauge(
            "voxflow_flow_reload_errors",
            "Flow and trigger files with errors after the last reload.",
            registry=self.registry,
        )

    def observe_event(self, event: ev.LiveEvent) -> None:
        """The hub's listener: node latency, failures and endings from the live events."""
        data = event.data
        flow = str(event.flow_id or "")
        if event.type == ev.NODE_FINISHED:
            outcome = "ok" if data.get("ok") else "failed"
            self.node_duration.labels(str(data.get("node_type")), outcome).observe(
                float(data.get("seconds") or 0.0)
            )
            for kind in ("tts", "stt"):
                for seconds in data.get(f"{kind}_latency") or ():
                    self.observe_latency(kind, float(seconds))
            for result in ("asked", "no_input", "no_match"):
                if data.get(result):
                    self.node_answers.labels(
                        str(data.get("node_flow_id") or flow), str(data.get("node_id")), result
                    ).inc(int(data[result]))
        elif event.type == ev.CALL_ERROR:
            self.errors.labels("call_error").inc()
        elif event.type == ev.CALL_VARIABLE_MISSING:
            names = event.data.get("names") or [None]
            self.missing_variables.labels(str(event.flow_id or "")).inc(len(names))
        elif event.type == ev.CALL_ENDED:
            status = str(data.get("status"))
            self.calls.labels(status).inc()
            self.call_duration.labels(flow, status).observe(float(data.get("duration") or 0.0))
            path = [str(node) for node in data.get("path") or ()]
            for node in dict.fromkeys(path):
                self.node_calls.labels(flow, node, "reached").inc()
            if path:
                self.node_calls.labels(flow, path[-1], "ended").inc()
        elif event.type == ev.CALL_TRANSCRIPT:
            confidence = data.get("confidence")
            if (
                data.get("is_final")
                and data.get("speaker") == "caller"
                and isinstance(confidence, (int, float))
            ):
                self.confidence.labels(flow).observe(float(confidence))

    def observe_latency(self, kind: str, seconds: float) -> None:
        self.latency[kind].observe(seconds)
        recent = self._recent[kind]
        recent.append(seconds)
        ordered = sorted(recent)
        self.latency_p95[kind].set(ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)])

    def set_live_counts(self, counts: dict[str, int]) -> None:
        for status, count in counts.items():
            self.active_calls.labels(status).set(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)
