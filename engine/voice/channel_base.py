"""The machinery under a :class:`~engine.voice.channel.VoiceChannel`: one node's view of a call.

It reads the call's events from where the previous node stopped and sorts
them: answers to our requests go to the operation waiting for them; caller
input (speech, keys) is queued, or dropped when it is late (for a request we
stopped) or not for us (words said while nobody asked); ``call:caller_left``
ends the node; ``call:agent_left`` waits for a new agent and then starts the
current operation again, as does an ``agent_joined`` from another agent than
the one serving the call while requests are outstanding (the old agent died
without a word and the new one came first). It keeps the request bookkeeping (what is
outstanding, so a cancelled node can stop it) and the call-wide counts that
outlive the node (engine.voice.state).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import itertools
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Self, TypeVar

from engine.core import telemetry
from engine.voice.bus import StreamCursor, VoiceBus
from engine.voice.clock import REAL_CLOCK, Clock
from engine.voice.errors import USER_HANGUP, AgentError, AgentTimeout, CallEnded
from engine.voice.messages import (
    CALLER_INPUT,
    AgentJoined,
    AgentLeft,
    CallerInput,
    CallerLeft,
    Command,
    Dtmf,
    ErrorEvent,
    Event,
    SpeechComplete,
    SpeechPartial,
    SpeechStarted,
    Stop,
)
from engine.voice.results import ChannelPolicy
from engine.voice.state import STATE_OWNER, CallVoiceState

_T = TypeVar("_T")
# How often one operation is started again after the agent left and another came back.
MAX_RESTARTS = 3


class AgentRejoined(Exception):
    """The agent left and a new one joined: the current operation starts again.

    Internal to the channel: ``_restartable`` catches it around each operation.
    """


class ChannelBase:
    """Events, requests and call state for one node; the operations are in VoiceChannel."""

    def __init__(
        self,
        bus: VoiceBus,
        call_id: str,
        *,
        clock: Clock = REAL_CLOCK,
        policy: ChannelPolicy | None = None,
        upcoming: tuple[str, ...] = (),
    ) -> None:
        self.bus = bus
        self.call_id = call_id
        self.clock = clock
        self.policy = policy or ChannelPolicy()
        # What the call may say after this node, filled in: sent with every question
        # (listen, collect_dtmf, record) so the agent can prepare it while the caller
        # answers (engine.voice.messages).
        self.upcoming = upcoming
        self.state = CallVoiceState()
        self._prefix = uuid.uuid4().hex[:10]
        self._numbers = itertools.count(1)
        self._cursor: StreamCursor[Event] = StreamCursor(functools.partial(bus.read_events, call_id))
        self._own: set[str] = set()  # every request this channel sent
        self._active: set[str] = set()  # sent and not yet answered or stopped
        self._stopped: set[str] = set()  # input for these is late: dropped
        self._pending: deque[CallerInput] = deque()
        self._deaf = False  # a prompt that is not interruptible is playing
        self._keep_speech = False
        self._speech_barge_in = False  # our prompt was cut by words nobody has used yet
        self._opened = False

    # ---- lifetime ---------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def open(self) -> None:
        self.state = CallVoiceState.from_dict(await self.bus.load_state(self.call_id, STATE_OWNER))
        self._cursor = StreamCursor(functools.partial(self.bus.read_events, self.call_id), self.state.cursor)
        self._pending.extend(self.state.early_events())
        self._keep_speech = self.state.keep_speech
        self._opened = True

    async def close(self) -> None:
        """Save where this node stopped, for the next one (also when cancelled)."""
        if not self._opened:
            return
        self._opened = False
        # Keys typed ahead always carry over; words only when they interrupted
        # our own message and no question of ours took them (see CallVoiceState).
        carried = [
            event
            for event in self._pending
            if isinstance(event, Dtmf) or (self._speech_barge_in and event.request_id not in self._stopped)
        ]
        self.state.cursor = self._cursor.position
        self.state.set_early_events(carried)
        self.state.keep_speech = self._speech_barge_in and not any(
            isinstance(event, SpeechComplete) for event in carried
        )
        await _shielded(self.bus.save_state(self.call_id, STATE_OWNER, self.state.to_dict()))

    # ---- caller input -----------------------------------------------------

    async def _drain(self) -> None:
        """Take in the events already on the bus (early input), without waiting."""
        while (entry := await self._cursor.next(0)) is not None:
            await self._route(entry[1])

    def _has_answer(self, accept_dtmf: bool) -> bool:
        return any(
            isinstance(event, (SpeechStarted, SpeechPartial, SpeechComplete))
            or (accept_dtmf and isinstance(event, Dtmf))
            for event in self._pending
        )

    def _take_input(self, *, speech: bool, dtmf: bool) -> CallerInput | None:
        """The first pending input of the kinds wanted; others stay queued (type-ahead)."""
        for index, event in enumerate(self._pending):
            wanted = dtmf if isinstance(event, Dtmf) else speech
            if wanted:
                del self._pending[index]
                self._caller_active()
                return event
        return None

    # ---- events -----------------------------------------------------------

    async def _next(self, deadline: float | None) -> Event | None:
        """The next event that matters, or None once ``deadline`` (flow time) has passed.

        Caller input is queued in ``_pending`` (and returned, to wake the waiter).
        """
        while True:
            if deadline is None:
                wait = 1.0
            else:
                left = deadline - self.clock.monotonic()
                if left <= 0:
                    return None
                wait = self.clock.real(left)
            entry = await self._cursor.next(wait)
            if entry is None:
                continue
            event = await self._route(entry[1])
            if event is not None:
                return event

    async def _route(self, event: Event) -> Event | None:
        if isinstance(event, CallerLeft):
            raise CallEnded(USER_HANGUP, "the caller hung up")
        if isinstance(event, AgentLeft) and not self._about_former_agent(event):
            await self._await_rejoin()
        if isinstance(event, AgentJoined):
            await self._agent_joined(event)
        if isinstance(event, ErrorEvent):
            if event.request_id in self._active:
                self._active.discard(event.request_id)
                raise AgentError(event.message or f"the voice agent reported '{event.code}'", event.code)
            return None  # about a request that is no longer ours to care about
        if isinstance(event, CALLER_INPUT):
            if not self._accept(event):  # type: ignore[arg-type]
                return None
            self._pending.append(event)  # type: ignore[arg-type]
        return event

    def _accept(self, event: CallerInput) -> bool:
        rid = event.request_id
        if self._deaf:
            return False
        if isinstance(event, Dtmf):
            return True  # keys are never late: what is not used now is typed ahead
        if rid in self._stopped:
            return False
        if rid and rid in self._own:
            return True
        if self._keep_speech:
            # The rest of an utterance that cut into the previous node's message.
            if isinstance(event, SpeechComplete):
                self._keep_speech = False
            return True
        return False

    async def _await_rejoin(self) -> None:
        """The agent left: wait for another; then every request must be sent again."""
        deadline = self.clock.monotonic() + self.policy.agent_rejoin_timeout
        while True:
            left = deadline - self.clock.monotonic()
            entry = await self._cursor.next(self.clock.real(left)) if left > 0 else None
            if entry is None:
                raise AgentTimeout(
                    "the voice agent left the call and no other agent joined within "
                    f"{self.policy.agent_rejoin_timeout:g} seconds"
                )
            if isinstance(entry[1], CallerLeft):
                raise CallEnded(USER_HANGUP, "the caller hung up")
            if isinstance(entry[1], AgentJoined):
                self.state.agent_id = entry[1].agent_id or self.state.agent_id
                self._stopped |= self._active  # whatever the old agent still sends is late
                self._active.clear()
                raise AgentRejoined()

    def _about_former_agent(self, event: AgentLeft) -> bool:
        """A late report that an agent left, about one another agent has replaced already.

        (LiveKit's webhook for a dead agent can arrive after its successor joined.)
        """
        return bool(event.agent_id and self.state.agent_id and event.agent_id != self.state.agent_id)

    async def _agent_joined(self, event: AgentJoined) -> None:
        """An agent announced itself with no ``call:agent_left`` before it.

        The first agent of a call, or the same one again, changes nothing. Another
        one while requests are outstanding means the agent serving them died
        without a word and this one took its place; it reads only commands sent
        after it joined, so the current operation starts again. Whatever was
        outstanding is stopped first, in case the new agent got some of it.
        """
        previous = self.state.agent_id
        if event.agent_id:
            self.state.agent_id = event.agent_id
        if not previous or not event.agent_id or event.agent_id == previous or not self._active:
            return
        outstanding = sorted(self._active)
        self._stopped |= self._active
        self._active.clear()
        for rid in outstanding:
            await self.bus.send_command(self.call_id, Stop(request_id=self._new_id(), target=rid))
        raise AgentRejoined()

    # ---- requests ---------------------------------------------------------

    def _new_id(self) -> str:
        return f"{self._prefix}-{next(self._numbers)}"

    async def _send(self, command: Command) -> None:
        self._own.add(command.request_id)
        if not isinstance(command, Stop):
            self._active.add(command.request_id)
        if telemetry.enabled():  # the agent's span of this command joins the call's trace
            command = dataclasses.replace(command, traceparent=telemetry.traceparent())
        await self.bus.send_command(self.call_id, command)

    async def _stop(self, rid: str) -> None:
        """Stop ``rid`` if it is still outstanding; its late input is dropped."""
        self._stopped.add(rid)
        if rid in self._active:
            self._active.discard(rid)
            await self.bus.send_command(self.call_id, Stop(request_id=self._new_id(), target=rid))

    async def _stop_all(self) -> None:
        for rid in sorted(self._active):
            await self._stop(rid)

    async def _restartable(self, operation: Callable[[], Awaitable[_T]]) -> _T:
        """Run one operation: stop its requests if cancelled; start again if the agent was replaced."""
        for attempt in range(MAX_RESTARTS + 1):
            try:
                return await operation()
            except AgentRejoined:
                if attempt == MAX_RESTARTS:
                    raise AgentTimeout("the voice agent kept leaving the call") from None
            except asyncio.CancelledError:
                await _shielded(self._stop_all())
                raise
        raise AssertionError("unreachable")

    # ---- call-wide rules --------------------------------------------------

    def _caller_active(self) -> None:
        self.state.silence = 0.0
        self.state.silence_checked = False

    def _note_barge_in(self, by: str) -> None:
        self._caller_active()
        if by == "speech":
            self._speech_barge_in = True
        now = self.clock.time()
        window = self.policy.rapid_window
        recent = [at for at in self.state.barge_ins if now - at <= window] + [now]
        self.state.barge_ins = recent[-(self.policy.rapid_barge_ins + 1) :]
        if len(recent) > self.policy.rapid_barge_ins:
            self.state.rapid = True


async def _shielded(work: Awaitable[None]) -> None:
    """Finish ``work`` even if the task is being cancelled (a stop, saving state)."""
    task = asyncio.ensure_future(work)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise
