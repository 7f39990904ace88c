"""What the server does with a call: take it, note it answered, hang it up.

The webhooks (engine.server.webhooks) verify and parse; this module acts.
Each action is idempotent, because Telnyx delivers at least once and several
server replicas may get deliveries about one call:

- a call's voxflow id is derived from Telnyx's id (:func:`call_id_for`), so
  every replica names it alike, and Temporal refuses a second workflow with
  the same id;
- the "ringing" record is written once (an insert that keeps what is there).

The server writes the record only while the call rings (and for calls that
never run a flow: a message, a rejection); from then on the workflow writes
it, through activities (engine.server.recorder).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from engine.flow_library import FlowLibrary
from engine.runtime.calls import check_input_size, hang_up, start_call
from engine.compile import FlowGraph
from engine.runtime.messages import CallInput, CallOptions, workflow_id
from engine.server import events as ev
from engine.server.records import FINAL_STATUSES, RecordsStore, Ringing
from engine.server.routing import UNAVAILABLE_MESSAGE, Decision, route_call
from engine.server.settings import ServerSettings
from engine.server.telnyx import call_id_for
from engine.triggers import Trigger

log = logging.getLogger(__name__)


CLAIM_SECONDS = 2 * 300.0 + 60  # a signature is remembered until it is stale anyway


class Replayed(Exception):
    """This exact signed request was handled before."""


class CallNotTaken(Exception):
    """Temporal could not start the call's workflow (it is down): a temporary problem."""


@dataclass(frozen=True)
class Answer:
    """What to tell Telnyx about an inbound call."""

    kind: Literal["dial", "message", "reject"]
    call_id: str
    message: str = ""
    language: str | None = None
    record: bool = False
    reason: str = ""


class CallDesk:
    def __init__(
        self,
        settings: ServerSettings,
        library: FlowLibrary,
        records: RecordsStore,
        publisher: ev.EventPublisher,
        temporal: Callable[[], Client],
        voice_bus: Any = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.settings = settings
        self.library = library
        self.records = records
        self.publisher = publisher
        self._temporal = temporal
        self.voice_bus = voice_bus
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._sized: set[str] = set()  # flow versions whose input size was checked

    # ---- a call arrives ---------------------------------------------------

    async def incoming(self, telnyx_call_id: str, caller: str, called: str,
                       claim: str | None = None, carrier: str = "telnyx",
                       flow: FlowGraph | None = None) -> Answer:
        """Route the call and start its flow; the same answer however often it is asked.

        ``claim`` (a request's signature) is claimed in the same database round trip
        as the ringing record; :class:`Replayed` when it was claimed before.
        ``carrier`` is the carrier the call came through (its id is that carrier's).
        ``flow`` skips routing: a caller who chose the flow itself (``voxflow dev``'s
        browser caller) reaches it whatever number it has.
        """
        call_id = call_id_for(telnyx_call_id)
        if flow is not None:
            decision = Decision("run", f"a call to the flow '{flow.flow_id}' from voxflow dev",
                                flow=flow)
        else:
            decision = route_call(self.library, called, caller, self._clock(),
                                  self.settings.unknown, carrier)
        graph = decision.flow if decision.action == "run" else None
        turned_away = graph is None
        status = "ringing" if not turned_away else (
            "completed" if decision.action == "message" else "failed")
        trigger = decision.trigger
        ring = self.records.ring(
            call_id, telnyx_call_id=telnyx_call_id, caller=caller, called=called,
            flow_id=graph.flow_id if graph else (trigger.flow if trigger else None),
            flow_version=graph.version if graph else None, status=status,
            reason="" if graph else decision.reason, claim=claim, claim_ttl=CLAIM_SECONDS,
        )
        if graph is None:
            ringing = await ring
            if not ringing.claimed:
                raise Replayed()
            return await self._turn_away(call_id, telnyx_call_id, caller, called, decision,
                                         ringing.inserted)
        # The record and the workflow's start go together: the caller waits on both, side
        # by side (in a row, claim first, the webhook took 1.49-1.66x a bare start instead
        # of 1.36-1.43x: bench/bench_server.py, three alternating runs). The workflow id is
        # used once ever, so a replay (found by the claim) cannot start a call that ended;
        # and a replay that started one is terminated at once.
        async def ring_and_announce() -> Ringing:
            ringing = await ring
            if ringing.claimed and ringing.inserted:  # announced before the worker says active
                await self.publisher.publish(ev.LiveEvent(
                    ev.CALL_INCOMING, call_id, graph.flow_id, {
                        "caller": caller, "called": called, "flow_version": graph.version,
                        "telnyx_call_id": telnyx_call_id, "reason": decision.reason,
                    }))
            return ringing

        ringing_task = asyncio.ensure_future(ring_and_announce())
        try:
            started = await self._start(graph, call_id, telnyx_call_id, caller, called, trigger,
                                        carrier)
        finally:
            ringing = await ringing_task
        if not ringing.claimed:
            if started:
                await self._temporal().get_workflow_handle(workflow_id(call_id)).terminate(
                    "a replayed webhook started it")
            raise Replayed()
        if not started and ringing.status in FINAL_STATUSES:
            return Answer("reject", call_id, reason="the call has already ended")
        record = bool(trigger and trigger.enable_recording)
        return Answer("dial", call_id, record=record, reason=decision.reason)

    async def _start(self, graph: FlowGraph, call_id: str, telnyx_call_id: str, caller: str,
                     called: str, trigger: Trigger | None, carrier: str = "telnyx") -> bool:
        """Start the call's workflow; False when it had been started before."""
        call = {
            "call_sid": telnyx_call_id, "caller_number": caller, "called_number": called,
            "flow_id": graph.flow_id, "carrier": carrier,
        }
        if trigger is not None:
            call.update({k: v for k, v in (("language", trigger.language),
                                           ("greeting_message", trigger.greeting_message))
                         if v})
        options = CallOptions(
            record=True, max_call_duration=trigger.max_call_duration if trigger else None,
        )
        client = self._temporal()
        if graph.version not in self._sized:
            # Once per flow version: the graph is the bulk of a call's input.
            check_input_size(CallInput(graph=graph, call_id=call_id, call=call),
                             client.data_converter)
            self._sized.add(graph.version)
        try:
            await start_call(
                client, graph, call_id, call=call, options=options,
                variables={"call_id": call_id, "flow_id": graph.flow_id,
                           "flow_version": graph.version},
                task_queue=self.settings.task_queue, once=True, size_checked=True,
            )
        except WorkflowAlreadyStartedError:
            return False  # another delivery (or replica) started it: same call, same answer
        except RPCError as error:
            raise CallNotTaken(f"Temporal did not start the call: {error.message}") from None
        return True

    async def _turn_away(self, call_id: str, telnyx_call_id: str, caller: str, called: str,
                         decision: Decision, inserted: bool) -> Answer:
        status = "completed" if decision.action == "message" else "failed"
        flow_id = decision.trigger.flow if decision.trigger else None
        if inserted:
            log.info("call from %s to %s not run: %s", caller, called, decision.reason)
            await self.publisher.publish(ev.LiveEvent(ev.CALL_INCOMING, call_id, flow_id, {
                "caller": caller, "called": called, "telnyx_call_id": telnyx_call_id,
                "reason": decision.reason,
            }))
            await self.publisher.publish(ev.LiveEvent(ev.CALL_ENDED, call_id, flow_id, {
                "status": status, "reason": decision.reason, "duration": 0.0,
            }))
        if decision.action == "message":
            return Answer("message", call_id, message=decision.message,
                          language=decision.language, reason=decision.reason)
        return Answer("reject", call_id, reason=decision.reason)

    async def could_not_start(self, call_id: str, problem: str) -> Answer:
        """Temporal was down: the caller hears an apology; the record says why."""
        duration = await self.records.call_ended(
            call_id, status="failed", reason=problem, variables={}, path=[], events=[],
            ended_at=self._clock().timestamp(),
        )
        await self.publisher.publish(ev.LiveEvent(ev.CALL_ERROR, call_id, None,
                                                  {"message": problem}))
        await self.publisher.publish(ev.LiveEvent(ev.CALL_ENDED, call_id, None, {
            "status": "failed", "reason": problem, "duration": duration}))
        return Answer("message", call_id, message=UNAVAILABLE_MESSAGE, reason=problem)

    # ---- what Telnyx tells us afterwards -----------------------------------

    async def answered(self, telnyx_call_id: str) -> None:
        call_id = call_id_for(telnyx_call_id)
        if await self.records.mark_active(call_id):
            record = await self.records.get_call(call_id) or {}
            await self.publisher.publish(ev.LiveEvent(
                ev.CALL_ACTIVE, call_id, record.get("flow_id"),
                {"flow_version": record.get("flow_version")}))

    async def hung_up(self, telnyx_call_id: str, cause: str) -> str:
        """The caller (or the network) ended the call: the workflow ends it as user_hangup."""
        call_id = call_id_for(telnyx_call_id)
        reason = f"the caller hung up ({cause})" if cause else "the caller hung up"
        try:
            await hang_up(self._temporal(), call_id, reason)
            return "signalled"
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise CallNotTaken(f"Temporal did not take the hangup: {error.message}") from None
        # No running workflow: the call ended already, or hung up before it started.
        record = await self.records.get_call(call_id)
        if record is not None and record["status"] == "ringing":
            duration = await self.records.call_ended(
                call_id, status="user_hangup", reason=reason, variables={}, path=[], events=[],
                ended_at=self._clock().timestamp(),
            )
            await self.publisher.publish(ev.LiveEvent(ev.CALL_ENDED, call_id,
                                                      record.get("flow_id"), {
                "status": "user_hangup", "reason": reason, "duration": duration}))
            return "ended before it started"
        return "already ended"

    async def recording_saved(self, telnyx_call_id: str, url: str) -> None:
        await self.records.set_recording_url(call_id_for(telnyx_call_id), url)

    async def dtmf(self, telnyx_call_id: str, digit: str) -> None:
        """Keys seen by Telnyx; passed to the voice bus only when asked (VOXFLOW_TELNYX_DTMF=bus),
        since LiveKit normally hears them too and the agent reports them."""
        if not self.settings.dtmf_to_bus or self.voice_bus is None or not digit:
            return
        from engine.voice.messages import Dtmf

        await self.voice_bus.publish_event(call_id_for(telnyx_call_id), Dtmf(digit=digit))
