"""The worker's :class:`~engine.runtime.recording.CallRecorder`: records plus live events.

Everything here runs inside activities (``record_call_started``,
``run_node``, ``record_call_ended``), so it is durable the Temporal way: a
write that did not happen because a worker died is done again when the
activity is retried on another worker. Writes are idempotent for that reason
(upserts; transcript turns keyed by their voice bus entry id).

The transcript comes from the voice bus itself: :class:`TranscriptBus` wraps
the bus a voice node uses and notes what the agent said (a ``speak`` once
``tts:complete`` or ``tts:interrupted`` says it was heard: a prompt never
said is never in the transcript) and what the caller said or pressed (``speech:partial`` as
interim, ``speech:complete`` and ``dtmf`` as final turns). Nothing about
recording ever fails a call: a store or Redis that is down is logged.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from typing import Any

from engine.runtime.recording import CallClosed, CallOpened, NodeEntered
from engine.server import analytics
from engine.server import events as ev
from engine.server.records import RecordsStore, Turn
from engine.voice.bus import Entry
from engine.voice.messages import (
    Command,
    Dtmf,
    Event,
    RecordComplete,
    Speak,
    SpeechComplete,
    SpeechPartial,
    SpeechStarted,
    TtsComplete,
    TtsInterrupted,
    TtsStarted,
)

log = logging.getLogger(__name__)
INTERRUPTED = " [interrupted]"  # appended to a prompt the caller cut short
# Changing every node, so not worth an event each time (it is on the record).
QUIET_VARIABLES = frozenset({"call_duration"})
NO_ANSWER = "[no answer]"  # the transcript's words for a question left unanswered
ANSWER_COUNTS = ("asked", "no_input", "no_match", "heard", "confidence_sum")


class CallRecorder:
    def __init__(self, store: RecordsStore | None, publisher: ev.EventPublisher) -> None:
        self.store = store
        self.publisher = publisher

    async def _publish(self, event: ev.LiveEvent) -> None:
        try:
            await self.publisher.publish(event)
        except Exception as error:  # pragma: no cover - publishers swallow their own
            log.warning("live event %s not published: %s", event.type, error)

    async def call_started(self, opened: CallOpened) -> None:
        changed = True
        if self.store is not None:
            changed = await self.store.call_started(
                opened.call_id,
                flow_id=opened.flow_id,
                flow_version=opened.flow_version,
                call=opened.call,
                answered_at=opened.started_at,
            )
        if changed:
            await self._publish(
                ev.LiveEvent(
                    ev.CALL_ACTIVE,
                    opened.call_id,
                    opened.flow_id,
                    {
                        "flow_version": opened.flow_version,
                        "caller": opened.call.get("caller_number"),
                        "called": opened.call.get("called_number"),
                    },
                )
            )

    async def node_entered(self, entered: NodeEntered) -> None:
        changes: dict[str, tuple[Any, Any]] = {}
        if self.store is not None:
            try:
                changes = await self.store.node_entered(
                    entered.call_id, entered.node_id, entered.walked, entered.variables
                )
            except Exception as error:
                log.warning("call record of %s not updated: %s", entered.call_id, error)
        if not entered.node_id.startswith("~"):  # the engine's own farewell and hold messages
            await self._publish(
                ev.LiveEvent(
                    ev.CALL_NODE_CHANGE,
                    entered.call_id,
                    entered.root_flow_id,
                    {
                        "node_id": entered.node_id,
                        "node_type": entered.node_type,
                        "node_flow_id": entered.flow_id,
                        "walked": list(entered.walked),
                    },
                )
            )
        for name, (old, new) in changes.items():
            if name not in QUIET_VARIABLES:
                await self._publish(
                    ev.LiveEvent(
                        ev.CALL_VARIABLE_UPDATED,
                        entered.call_id,
                        entered.root_flow_id,
                        {"name": name, "value": new, "previous": old},
                    )
                )

    async def node_finished(
        self,
        entered: NodeEntered,
        seconds: float,
        problem: str | None,
        answers: Mapping[str, Any] | None = None,
        result: Mapping[str, Any] | None = None,
    ) -> None:
        if result is not None and self.store is not None:
            try:
                await self.store.service_answer(
                    entered.call_id,
                    entered.run_key or entered.node_id,
                    entered.flow_id,
                    entered.node_id,
                    entered.node_type,
                    dict(result),
                )
            except Exception as error:
                log.warning("the answer of %s in %s not saved: %s", entered.node_id, entered.call_id, error)
        asked = answers is not None and (answers.get("asked") or answers.get("heard"))
        if asked and self.store is not None and entered.flow_id == entered.root_flow_id:
            assert answers is not None
            run = analytics.NodeRun(entered.node_id, **{name: answers.get(name, 0) for name in ANSWER_COUNTS})
            try:
                await self.store.node_run(entered.call_id, entered.run_key or entered.node_id, run)
            except Exception as error:
                log.warning("answers of %s at %s not saved: %s", entered.call_id, entered.node_id, error)
        await self._publish(
            ev.LiveEvent(
                ev.NODE_FINISHED,
                entered.call_id,
                entered.root_flow_id,
                {
                    "node_id": entered.node_id,
                    "node_type": entered.node_type,
                    "node_flow_id": entered.flow_id,
                    "seconds": round(seconds, 6),
                    "ok": problem is None,
                    **(answers or {}),
                },
            )
        )
        if problem is not None:
            await self._publish(
                ev.LiveEvent(
                    ev.CALL_ERROR,
                    entered.call_id,
                    entered.root_flow_id,
                    {
                        "node_id": entered.node_id,
                        "node_type": entered.node_type,
                        "message": problem,
                    },
                )
            )

    async def variables_missing(
        self, call_id: str, root_flow_id: str, flow_id: str, node_id: str, names: list[str], message: str
    ) -> None:
        """A node's template read variables the call did not have: tell the monitor."""
        await self._publish(
            ev.LiveEvent(
                ev.CALL_VARIABLE_MISSING,
                call_id,
                root_flow_id,
                {
                    "node_id": node_id,
                    "node_flow_id": flow_id,
                    "names": list(names),
                    "message": message,
                },
            )
        )

    async def call_ended(self, closed: CallClosed) -> None:
        duration = max(0.0, closed.ended_at - closed.started_at)
        if self.store is not None:
            duration = await self.store.call_ended(
                closed.call_id,
                status=closed.status,
                reason=closed.reason,
                variables=closed.variables,
                path=closed.path,
                events=[dataclasses.asdict(e) for e in closed.events],
                ended_at=closed.ended_at,
                flow_id=closed.flow_id,
                flow_version=closed.flow_version,
                answered_at=closed.started_at,
            )
        if closed.status == "failed":
            await self._publish(
                ev.LiveEvent(
                    ev.CALL_ERROR,
                    closed.call_id,
                    closed.flow_id,
                    {
                        "node_id": closed.path[-1] if closed.path else None,
                        "message": closed.reason,
                    },
                )
            )
        await self._publish(
            ev.LiveEvent(
                ev.CALL_ENDED,
                closed.call_id,
                closed.flow_id,
                {
                    "status": closed.status,
                    "reason": closed.reason,
                    "duration": round(duration, 3),
                    "flow_version": closed.flow_version,
                    # The nodes the call went through (per-node metrics count them).
                    "path": [node for node in closed.path if not node.startswith("~")],
                },
            )
        )

    def watch_voice_bus(self, bus: Any, call_id: str, flow_id: str) -> Any:
        if bus is None:
            return None
        return TranscriptBus(bus, self, call_id, flow_id)

    async def turn(self, turn: Turn, flow_id: str, *, final: bool = True) -> None:
        """Save a final turn (once) and publish it; interim words are only published."""
        if final and self.store is not None:
            try:
                if not await self.store.add_turn(turn):
                    return  # already noted by an earlier attempt of this activity
            except Exception as error:
                log.warning("transcript of %s not saved: %s", turn.call_id, error)
        await self._publish(
            ev.LiveEvent(
                ev.CALL_TRANSCRIPT,
                turn.call_id,
                flow_id,
                {
                    **turn.to_json(),
                    "is_final": final,
                },
            )
        )


class TranscriptBus:
    """A voice bus that notes the transcript of one recorded call as a node uses it."""

    def __init__(self, bus: Any, recorder: CallRecorder, call_id: str, flow_id: str) -> None:
        self._bus = bus
        self._recorder = recorder
        self._call_id = call_id
        self._flow_id = flow_id
        # Prompts sent and not yet said (request id -> entry id, text, time sent): a line
        # is in the transcript once the agent has said it, never merely for being sent.
        self._unsaid: dict[str, tuple[str, str, float]] = {}
        # How this node's questions went (call analytics): see note_verdict.
        self.answers: dict[str, Any] = {}
        self._last_entry = "0"  # the last voice bus event read

    async def note_verdict(self, verdict: str) -> None:
        """engine.voice.dialog: one answer judged ``accepted``, ``no_input`` or ``no_match``.

        A question left unanswered is a turn of the transcript too (kind ``silence``), so
        that a call replayed as a test leaves the same questions unanswered.
        """
        self.answers["asked"] = self.answers.get("asked", 0) + 1
        if verdict in ("no_input", "no_match"):
            self.answers[verdict] = self.answers.get(verdict, 0) + 1
        if verdict == "no_input":
            # Keyed by the last event read, so a retried node notes it once.
            key = f"n{self._last_entry}-{self.answers['no_input']}"
            await self._recorder.turn(
                Turn(self._call_id, key, time.time(), "caller", "silence", NO_ANSWER), self._flow_id
            )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bus, name)

    async def send_command(self, call_id: str, command: Command) -> str:
        entry_id: str = await self._bus.send_command(call_id, command)
        if isinstance(command, Speak) and call_id == self._call_id and command.text.strip():
            self._unsaid[command.request_id] = (entry_id, command.text, time.time())
        return entry_id

    async def read_events(self, call_id: str, after: str, timeout: float) -> list[Entry[Event]]:
        entries: list[Entry[Event]] = await self._bus.read_events(call_id, after, timeout)
        if call_id == self._call_id:
            for entry_id, event in entries:
                self._last_entry = entry_id
                await self._note(entry_id, event)
        return entries

    async def _note(self, entry_id: str, event: Event | None) -> None:
        key, now = f"e{entry_id}", time.time()
        latency = getattr(event, "latency", None)  # the agent's TTS / STT latency
        if isinstance(latency, (int, float)):
            name = "tts_latency" if isinstance(event, TtsStarted) else "stt_latency"
            self.answers.setdefault(name, []).append(float(latency))
        if isinstance(event, (TtsComplete, TtsInterrupted)):
            said = self._unsaid.pop(event.request_id, None)
            if said is not None:
                sent_entry, text, sent_at = said
                if isinstance(event, TtsInterrupted):
                    text += INTERRUPTED
                await self._recorder.turn(
                    Turn(self._call_id, f"c{sent_entry}", sent_at, "agent", "speech", text), self._flow_id
                )
            return
        if isinstance(event, SpeechStarted):
            # Heard before understood: a recogniser that decides after the silence
            # (pocketsphinx) sends no interim words, so this tells the monitor the caller
            # is speaking (an interim turn with no words yet; nothing is stored).
            await self._recorder.turn(
                Turn(self._call_id, key, now, "caller", "speech", ""), self._flow_id, final=False
            )
        elif isinstance(event, SpeechPartial) and event.transcript:
            await self._recorder.turn(
                Turn(self._call_id, key, now, "caller", "speech", event.transcript, event.confidence),
                self._flow_id,
                final=False,
            )
        elif isinstance(event, SpeechComplete) and event.transcript:
            if event.confidence is not None:
                self.answers["heard"] = self.answers.get("heard", 0) + 1
                self.answers["confidence_sum"] = self.answers.get("confidence_sum", 0.0) + float(
                    event.confidence
                )
            await self._recorder.turn(
                Turn(self._call_id, key, now, "caller", "speech", event.transcript, event.confidence),
                self._flow_id,
            )
        elif isinstance(event, Dtmf):
            await self._recorder.turn(
                Turn(self._call_id, key, now, "caller", "dtmf", event.digit), self._flow_id
            )
        elif isinstance(event, RecordComplete) and (event.transcript or event.url):
            text = event.transcript or "[recording]"
            await self._recorder.turn(
                Turn(self._call_id, key, now, "caller", "recording", text), self._flow_id
            )
