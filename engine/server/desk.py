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

from engine.language.compile import FlowGraph
from engine.language.triggers import Trigger
from engine.runtime.calls import check_input_size, hang_up, send_call_data, start_call
from engine.runtime.messages import CallInput, CallOptions, workflow_id
from engine.server import events as ev
from engine.server.caller_lookup import CallerLookup
from engine.server.flow_library import FlowLibrary
from engine.server.records import FINAL_STATUSES, RecordsStore, Ringing
from engine.server.routing import UNAVAILABLE_MESSAGE, Decision, normalise_number, route_call
from engine.server.settings import ServerSettings
from engine.server.telnyx import CallControlEvent, CallData, call_id_for
from engine.server.telnyx_api import HANG_UP_AFTER_SPEAKING, TelnyxApi, TelnyxApiError

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
        telnyx: TelnyxApi | None = None,
        lookup: CallerLookup | None = None,
    ) -> None:
        self.settings = settings
        self.library = library
        self.records = records
        self.publisher = publisher
        self._temporal = temporal
        self.voice_bus = voice_bus
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._sized: set[str] = set()  # flow versions whose input size was checked
        self.telnyx = telnyx
        self.lookup = lookup
        self._tasks: set[asyncio.Task[Any]] = set()

    def _beside(self, work: Any) -> None:
        """Run ``work`` beside the request (kept referenced until it ends)."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # ---- a call arrives ---------------------------------------------------

    async def incoming(
        self,
        telnyx_call_id: str,
        caller: str,
        called: str,
        claim: str | None = None,
        *,
        carrier: str = "telnyx",
        flow: FlowGraph | None = None,
        caller_data: CallData | None = None,
        session_id: str = "",
        leg_id: str = "",
    ) -> Answer:
        """Route the call and start its flow; the same answer however often it is asked.

        ``claim`` (a request's signature) is claimed in the same database round trip
        as the ringing record; :class:`Replayed` when it was claimed before.
        ``carrier`` is the carrier the call came through (its id is that carrier's).
        ``flow`` skips routing: a caller who chose the flow itself (``voxflow dev``'s
        browser caller) reaches it whatever number it has.
        ``caller_data``: what Telnyx said about the caller (name, STIR/SHAKEN).
        """
        call_id = call_id_for(telnyx_call_id)
        if flow is not None:
            decision = Decision("run", f"a call to the flow '{flow.flow_id}' from voxflow dev", flow=flow)
        else:
            decision = route_call(self.library, called, caller, self._clock(), self.settings.unknown, carrier)
        graph = decision.flow if decision.action == "run" else None
        turned_away = graph is None
        status = "ringing" if not turned_away else ("completed" if decision.action == "message" else "failed")
        trigger = decision.trigger
        ring = self.records.ring(
            call_id,
            telnyx_call_id=telnyx_call_id,
            caller=caller,
            called=called,
            flow_id=graph.flow_id if graph else (trigger.flow if trigger else None),
            flow_version=graph.version if graph else None,
            status=status,
            reason="" if graph else decision.reason,
            claim=claim,
            claim_ttl=CLAIM_SECONDS,
            session_id=session_id,
            leg_id=leg_id,
        )
        if graph is None:
            ringing = await ring
            if not ringing.claimed:
                raise Replayed()
            return await self._turn_away(call_id, telnyx_call_id, caller, called, decision, ringing.inserted)

        # The record and the workflow's start go together: the caller waits on both, side
        # by side (in a row, claim first, the webhook took 1.49-1.66x a bare start instead
        # of 1.36-1.43x: bench/bench_server.py, three alternating runs). The workflow id is
        # used once ever, so a replay (found by the claim) cannot start a call that ended;
        # and a replay that started one is terminated at once.
        async def ring_and_announce() -> Ringing:
            ringing = await ring
            if ringing.claimed and ringing.inserted:  # announced before the worker says active
                await self.publisher.publish(
                    ev.LiveEvent(
                        ev.CALL_INCOMING,
                        call_id,
                        graph.flow_id,
                        {
                            "caller": caller,
                            "called": called,
                            "flow_version": graph.version,
                            "telnyx_call_id": telnyx_call_id,
                            "reason": decision.reason,
                        },
                    )
                )
            return ringing

        extra = dict(caller_data.variables()) if caller_data is not None else {}
        look_up = self._should_look_up(caller)
        if look_up and self.lookup is not None and self.lookup.knows(caller):
            facts = self.lookup.cached(caller)
            extra.update(facts.variables() if facts is not None else {})
            look_up = False
        ringing_task = asyncio.ensure_future(ring_and_announce())
        started = False
        try:
            started = await self._start(
                graph, call_id, telnyx_call_id, caller, called, trigger, carrier, extra
            )
        finally:
            try:
                ringing = await ringing_task
            except BaseException:
                # The workflow runs but its record was not written: a call nobody could
                # see or close. Stop it; the delivery fails and its retry starts afresh.
                if started:
                    await self._terminate(call_id, "its call record could not be written")
                raise
        if started and look_up and self.lookup is not None:
            self.lookup.in_background(
                caller, lambda values: send_call_data(self._temporal(), call_id, values, rpc_timeout=5.0)
            )
        if not ringing.claimed:
            if started:
                await self._terminate(call_id, "a replayed webhook started it")
            raise Replayed()
        if not ringing.inserted and ringing.status in FINAL_STATUSES:
            if started:  # its record says it ended (or was refused) before: it stays so
                await self._terminate(call_id, "the call had already ended")
            return Answer("reject", call_id, reason="the call has already ended")
        record = bool(trigger and trigger.enable_recording)
        return Answer("dial", call_id, record=record, reason=decision.reason)

    def _should_look_up(self, caller: str) -> bool:
        return (
            self.lookup is not None
            and self.settings.number_lookup
            and normalise_number(caller).startswith("+")
        )

    async def _terminate(self, call_id: str, reason: str) -> None:
        try:
            await asyncio.wait_for(
                self._temporal().get_workflow_handle(workflow_id(call_id)).terminate(reason=reason),
                max(self.settings.temporal_deadline, 1.0),
            )
        except (RPCError, TimeoutError) as error:
            log.warning("the workflow of call %s could not be stopped (%s): %s", call_id, reason, error)

    async def _start(
        self,
        graph: FlowGraph,
        call_id: str,
        telnyx_call_id: str,
        caller: str,
        called: str,
        trigger: Trigger | None,
        carrier: str = "telnyx",
        extra: dict[str, Any] | None = None,
    ) -> bool:
        """Start the call's workflow; False when it had been started before.

        Within ``settings.temporal_deadline``: a Temporal that does not answer by then is
        down for this caller (CallNotTaken), who must not wait out the client's retries.
        """
        call = {
            "call_sid": telnyx_call_id,
            "caller_number": caller,
            "called_number": called,
            "flow_id": graph.flow_id,
            "carrier": carrier,
            **(extra or {}),
        }
        if trigger is not None:
            call.update(
                {
                    k: v
                    for k, v in (
                        ("language", trigger.language),
                        ("greeting_message", trigger.greeting_message),
                    )
                    if v
                }
            )
        options = CallOptions(
            record=True,
            max_call_duration=trigger.max_call_duration if trigger else None,
        )
        client = self._temporal()
        if graph.version not in self._sized:
            # Once per flow version: the graph is the bulk of a call's input.
            check_input_size(CallInput(graph=graph, call_id=call_id, call=call), client.data_converter)
            self._sized.add(graph.version)
        deadline = self.settings.temporal_deadline
        try:
            await asyncio.wait_for(
                start_call(
                    client,
                    graph,
                    call_id,
                    call=call,
                    options=options,
                    variables={"call_id": call_id, "flow_id": graph.flow_id, "flow_version": graph.version},
                    task_queue=self.settings.task_queue,
                    once=True,
                    size_checked=True,
                ),
                deadline,
            )
        except WorkflowAlreadyStartedError:
            return False  # another delivery (or replica) started it: same call, same answer
        except RPCError as error:
            raise CallNotTaken(f"Temporal did not start the call: {error.message}") from None
        except RuntimeError as error:  # a client that never connected: "Failed client connect"
            raise CallNotTaken(f"Temporal could not be reached: {error}") from None
        except TimeoutError:
            # The start may still land once Temporal answers: that workflow would run a
            # call nobody is on. Stopped as soon as Temporal takes requests again.
            self._beside(self._stop_late_start(call_id))
            raise CallNotTaken(
                f"Temporal did not start the call within {deadline:g} s (it is down or overloaded)"
            ) from None
        return True

    async def _stop_late_start(self, call_id: str, attempts: int = 20) -> None:
        handle = self._temporal().get_workflow_handle(workflow_id(call_id))
        for attempt in range(attempts):
            try:
                await handle.terminate(reason="the caller was told the call could not start")
                log.info("stopped the late start of call %s", call_id)
                return
            except RPCError as error:
                if error.status == RPCStatusCode.NOT_FOUND and attempt >= 3:
                    return  # it never started
            except Exception as error:  # noqa: BLE001 - keep trying while Temporal is away
                log.debug("stopping the late start of %s: %s", call_id, error)
            await asyncio.sleep(min(2.0 * (attempt + 1), 10.0))

    async def _turn_away(
        self, call_id: str, telnyx_call_id: str, caller: str, called: str, decision: Decision, inserted: bool
    ) -> Answer:
        status = "completed" if decision.action == "message" else "failed"
        flow_id = decision.trigger.flow if decision.trigger else None
        if inserted:
            log.info("call from %s to %s not run: %s", caller, called, decision.reason)
            await self.publisher.publish(
                ev.LiveEvent(
                    ev.CALL_INCOMING,
                    call_id,
                    flow_id,
                    {
                        "caller": caller,
                        "called": called,
                        "telnyx_call_id": telnyx_call_id,
                        "reason": decision.reason,
                    },
                )
            )
            await self.publisher.publish(
                ev.LiveEvent(
                    ev.CALL_ENDED,
                    call_id,
                    flow_id,
                    {
                        "status": status,
                        "reason": decision.reason,
                        "duration": 0.0,
                    },
                )
            )
        if decision.action == "message":
            return Answer(
                "message",
                call_id,
                message=decision.message,
                language=decision.language,
                reason=decision.reason,
            )
        return Answer("reject", call_id, reason=decision.reason)

    async def incoming_call_control(self, event: CallControlEvent) -> str:
        """A call that came through a Call Control application (call.initiated, no TeXML).

        With ``TELNYX_API_KEY`` it is answered and bridged to LiveKit SIP (or told its
        message, or rejected) with Call Control commands, sent beside the webhook's
        answer. Without, nothing can answer it: it is refused, in the log and its record.
        """
        telnyx_call_id = event.call_control_id
        call_id = call_id_for(telnyx_call_id)
        if self.telnyx is None:
            reason = (
                "it came through a Call Control application, and voxflow answers those "
                "only with TELNYX_API_KEY set (or point the number at a TeXML "
                "application whose voice URL is /webhooks/telnyx/texml)"
            )
            ringing = await self.records.ring(
                call_id,
                telnyx_call_id=telnyx_call_id,
                caller=event.caller,
                called=event.called,
                flow_id=None,
                flow_version=None,
                status="failed",
                reason=f"not answered: {reason}",
                session_id=event.call_session_id,
                leg_id=event.call_leg_id,
            )
            if ringing.inserted:
                log.error(
                    "call %s from %s to %s not answered: %s",
                    telnyx_call_id,
                    event.caller,
                    event.called,
                    reason,
                )
                await self.publisher.publish(
                    ev.LiveEvent(
                        ev.CALL_ENDED,
                        call_id,
                        None,
                        {"status": "failed", "reason": f"not answered: {reason}", "duration": 0.0},
                    )
                )
            return "refused: no TELNYX_API_KEY"
        try:
            answer = await self.incoming(
                telnyx_call_id,
                event.caller,
                event.called,
                caller_data=event.caller_data,
                session_id=event.call_session_id,
                leg_id=event.call_leg_id,
            )
        except CallNotTaken as problem:
            answer = await self.could_not_start(call_id, str(problem))
        self._beside(self._command_call(telnyx_call_id, answer))
        return f"taken: {answer.kind}"

    async def _command_call(self, telnyx_call_id: str, answer: Answer) -> None:
        from engine.server import texml

        api = self.telnyx
        assert api is not None
        prefix = f"voxflow-{answer.call_id}"
        settings = self.settings
        try:
            if answer.kind == "dial":
                await api.answer_and_bridge(
                    telnyx_call_id,
                    texml.sip_uri(answer.call_id, settings.sip_host),
                    command_prefix=prefix,
                    username=settings.sip_username,
                    password=settings.sip_password,
                    record=answer.record and settings.public_url is not None,
                )
            elif answer.kind == "message":
                await api.say_and_hang_up(
                    telnyx_call_id, answer.message, answer.language, command_prefix=prefix
                )
            else:
                await api.reject(telnyx_call_id, command_prefix=prefix)
        except TelnyxApiError as error:
            log.error("call %s: %s", telnyx_call_id, error)
            if answer.kind == "dial":
                await self._terminate(answer.call_id, str(error))
                duration = await self.records.close_if_live(
                    answer.call_id, status="failed", reason=str(error), ended_at=self._clock().timestamp()
                )
                if duration is not None:
                    await self.publisher.publish(
                        ev.LiveEvent(
                            ev.CALL_ENDED,
                            answer.call_id,
                            None,
                            {"status": "failed", "reason": str(error), "duration": duration},
                        )
                    )

    async def speak_ended(self, event: CallControlEvent) -> str:
        """call.speak.ended: a message voxflow said (with our client_state) hangs up."""
        if self.telnyx is None or event.text("client_state") != HANG_UP_AFTER_SPEAKING:
            return "ignored"
        prefix = f"voxflow-{call_id_for(event.call_control_id)}"
        self._beside(self._quietly(self.telnyx.hang_up(event.call_control_id, command_prefix=prefix)))
        return "hanging up"

    @staticmethod
    async def _quietly(work: Any) -> None:
        try:
            await work
        except TelnyxApiError as error:
            log.warning("%s", error)

    async def could_not_start(self, call_id: str, problem: str) -> Answer:
        """Temporal was down: the caller hears an apology; the record says why."""
        duration = await self.records.call_ended(
            call_id,
            status="failed",
            reason=problem,
            variables={},
            path=[],
            events=[],
            ended_at=self._clock().timestamp(),
        )
        await self.publisher.publish(ev.LiveEvent(ev.CALL_ERROR, call_id, None, {"message": problem}))
        await self.publisher.publish(
            ev.LiveEvent(
                ev.CALL_ENDED, call_id, None, {"status": "failed", "reason": problem, "duration": duration}
            )
        )
        return Answer("message", call_id, message=UNAVAILABLE_MESSAGE, reason=problem)

    # ---- what Telnyx tells us afterwards -----------------------------------

    async def answered(self, telnyx_call_id: str) -> None:
        call_id = call_id_for(telnyx_call_id)
        if await self.records.mark_active(call_id):
            record = await self.records.get_call(call_id) or {}
            await self.publisher.publish(
                ev.LiveEvent(
                    ev.CALL_ACTIVE,
                    call_id,
                    record.get("flow_id"),
                    {"flow_version": record.get("flow_version")},
                )
            )

    async def hung_up(self, telnyx_call_id: str, cause: str) -> str:
        """The caller (or the network) ended the call: the workflow ends it as user_hangup."""
        call_id = call_id_for(telnyx_call_id)
        reason = f"the caller hung up ({cause})" if cause else "the caller hung up"
        deadline = self.settings.temporal_deadline
        try:
            await asyncio.wait_for(hang_up(self._temporal(), call_id, reason, rpc_timeout=deadline), deadline)
            return "signalled"
        except TimeoutError:
            raise CallNotTaken(f"Temporal did not take the hangup within {deadline:g} s") from None
        except RuntimeError as error:
            raise CallNotTaken(f"Temporal could not be reached: {error}") from None
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise CallNotTaken(f"Temporal did not take the hangup: {error.message}") from None
        # No running workflow: the call ended already, or hung up before it started.
        record = await self.records.get_call(call_id)
        if record is not None and record["status"] == "ringing":
            duration = await self.records.call_ended(
                call_id,
                status="user_hangup",
                reason=reason,
                variables={},
                path=[],
                events=[],
                ended_at=self._clock().timestamp(),
            )
            await self.publisher.publish(
                ev.LiveEvent(
                    ev.CALL_ENDED,
                    call_id,
                    record.get("flow_id"),
                    {"status": "user_hangup", "reason": reason, "duration": duration},
                )
            )
            return "ended before it started"
        return "already ended"

    async def recording_saved(self, telnyx_call_id: str, url: str) -> None:
        await self.records.set_recording_url(call_id_for(telnyx_call_id), url)

    async def recording(
        self,
        *,
        telnyx_call_id: str = "",
        session_id: str = "",
        leg_id: str = "",
        recording_id: str = "",
        url: str = "",
    ) -> str:
        """A recording began or was saved: noted on its call, found by whichever of its ids
        the event carries (Call Control's call.recording.saved has no call_control_id)."""
        record = await self.records.find_telnyx_call(
            telnyx_call_id=telnyx_call_id, session_id=session_id, leg_id=leg_id, recording_id=recording_id
        )
        if record is None:
            log.info(
                "a recording event for a call voxflow has no record of (call %s, "
                "session %s, leg %s, recording %s) was ignored",
                telnyx_call_id or "-",
                session_id or "-",
                leg_id or "-",
                recording_id or "-",
            )
            return "unknown call"
        await self.records.note_telnyx_ids(record["call_id"], recording_id=recording_id, recording_url=url)
        return "recording saved" if url else "recording noted"

    async def status(self, telnyx_call_id: str, *, session_id: str = "", leg_id: str = "") -> None:
        """A progress callback about a call voxflow knows: keep Telnyx's ids of it."""
        if session_id or leg_id:
            await self.records.note_telnyx_ids(
                call_id_for(telnyx_call_id), session_id=session_id, leg_id=leg_id
            )

    async def dtmf(self, telnyx_call_id: str, digit: str) -> None:
        """Keys seen by Telnyx; passed to the voice bus only when asked (VOXFLOW_TELNYX_DTMF=bus),
        since LiveKit normally hears them too and the agent reports them."""
        if not self.settings.dtmf_to_bus or self.voice_bus is None or not digit:
            return
        from engine.voice.messages import Dtmf

        await self.voice_bus.publish_event(call_id_for(telnyx_call_id), Dtmf(digit=digit))
