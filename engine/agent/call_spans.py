"""The agent's part of a call's trace and timing: a span per command, TTS and STT latency.

The BusAgent hands every command it takes and every event it publishes here.
A command sent with a ``traceparent`` (tracing on, engine.core.telemetry) opens an
``agent <command>`` span under the node that sent it, closed by the event that
answers it. Whatever tracing says, the agent's two latencies are measured here
and carried to the worker on the events themselves (their ``latency`` field),
for the ``/metrics`` figures:

- TTS: from taking a ``speak`` / ``play`` to its first audio (``tts:started``);
- STT: from the caller's last sound heard (``speech:started`` or the latest
  ``speech:partial``) to the final transcript (``speech:complete``).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from engine.core import telemetry
from engine.voice.messages import (
    Command,
    ErrorEvent,
    Event,
    HangupComplete,
    Listen,
    Play,
    RecordComplete,
    Speak,
    SpeechComplete,
    SpeechPartial,
    SpeechStarted,
    TransferComplete,
    TtsComplete,
    TtsInterrupted,
    TtsStarted,
    message_type,
)

_ENDS = (
    TtsComplete,
    TtsInterrupted,
    SpeechComplete,
    RecordComplete,
    TransferComplete,
    HangupComplete,
    ErrorEvent,
)


class CallSpans:
    def __init__(self, call_id: str) -> None:
        self.call_id = call_id
        self._taken: dict[str, float] = {}  # speak/play request id -> when taken
        self._heard: dict[str, float] = {}  # listen request id -> caller's last sound
        self._spans: dict[str, Any] = {}

    def command(self, command: Command) -> None:
        rid = command.request_id
        if isinstance(command, (Speak, Play)):
            self._taken[rid] = time.monotonic()
        parent = getattr(command, "traceparent", "")
        if parent:
            span = telemetry.start_child(
                f"agent {message_type(command)}",
                parent,
                {telemetry.CALL_ID: self.call_id, "voxflow.request_id": rid},
            )
            if span is not None:
                if isinstance(command, Speak):
                    span.set_attribute("voxflow.text", command.text[:200])
                if isinstance(command, Listen):
                    span.set_attribute("voxflow.expected_phrases", list(command.expected_phrases))
                self._spans[rid] = span

    def event(self, event: Event) -> Event:
        """The event to publish: with its latency filled in when it is one that has one."""
        rid = getattr(event, "request_id", "")
        now = time.monotonic()
        if isinstance(event, TtsStarted) and rid in self._taken:
            event = dataclasses.replace(event, latency=round(now - self._taken.pop(rid), 4))
        elif isinstance(event, (SpeechStarted, SpeechPartial)):
            self._heard[rid] = now
        elif isinstance(event, SpeechComplete) and rid in self._heard:
            event = dataclasses.replace(event, latency=round(now - self._heard.pop(rid), 4))
        span = self._spans.get(rid)
        if span is not None:
            span.add_event(message_type(event))
            latency = getattr(event, "latency", None)
            if isinstance(event, TtsStarted) and latency is not None:
                span.set_attribute("voxflow.tts.latency_ms", round(latency * 1000, 1))
            if isinstance(event, SpeechComplete):
                span.set_attribute("voxflow.transcript", event.transcript[:200])
                if latency is not None:
                    span.set_attribute("voxflow.stt.latency_ms", round(latency * 1000, 1))
            if isinstance(event, _ENDS):
                self._spans.pop(rid).end()
        return event

    def close(self) -> None:
        for span in self._spans.values():
            span.end()
        self._spans.clear()
