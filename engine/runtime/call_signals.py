"""Signals for a call: named events wait here until a node waiting for a signal takes
them (a bounded number per name), or go on to the subflow the call is in."""

from __future__ import annotations

from typing import Any

from temporalio import workflow

import engine.runtime.messages as m
from engine.runtime.call_base import CallBase

PENDING_SIGNAL_LIMIT = 50  # per signal name, received before anyone waits for it
TRANSCRIPT_LIMIT = 200


class CallSignals(CallBase):
    async def _receive_signal(self, name: str, timeout: float) -> m.SignalWait:
        self._waiting_for = name
        try:
            await workflow.wait_condition(
                lambda: bool(self._pending.get(name)),
                timeout=timeout,
                timeout_summary=f"waiting for signal {name}",
            )
        except TimeoutError:
            return m.SignalWait(arrived=False)
        finally:
            self._waiting_for = None
        queue = self._pending[name]
        payload = queue.pop(0)
        if not queue:
            del self._pending[name]
        return m.SignalWait(arrived=True, payload=payload)

    async def _deliver(self, name: str, payload: Any) -> None:
        child = self._child
        if child is not None:
            # The call is inside a subflow: the signal is for it.
            try:
                await child.signal(m.SIGNAL_SIGNAL, m.CallSignal(name, payload))
                return
            except Exception as error:  # it ended meanwhile: keep the signal here
                self._event("signal_not_forwarded", f"'{name}': {error}", self._current)
        queue = self._pending.setdefault(name, [])
        if len(queue) >= PENDING_SIGNAL_LIMIT:
            self._event("signal_dropped", f"too many '{name}' signals waiting", self._current)
            return
        queue.append(payload)

    def _note_voice_event(self, event: m.VoiceEvent) -> None:
        self._transcript.append(m.TranscriptEntry(self._elapsed(), event.kind, event.text, event.confidence))
        del self._transcript[:-TRANSCRIPT_LIMIT]

    def _note_call_data(self, values: dict[str, Any]) -> None:
        if not isinstance(values, dict):
            return
        for key, value in values.items():
            if key in m.AUTOMATIC_VARIABLES:
                self._variables[key] = value
                self._input.call[key] = value  # and for the nodes' call data
