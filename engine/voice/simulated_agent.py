"""An agent side of the voice bus driven from code: a scripted caller, no audio.

It does what the LiveKit agent does, minus sound: it answers ``speak`` with
tts:started and tts:complete (or tts:interrupted when the caller's next
action cuts in), ``listen`` with speech events, key presses with dtmf events,
``record`` with record:complete, ``transfer`` and ``hangup`` with their
confirmations, and keeps a transcript of both sides.

The caller is a queue of actions::

    agent = SimulatedAgent(bus, "call-1", [
        Say("my balance please"),
        Press("1", barge_in=True),     # during the next interruptible prompt
        Silence(6),                    # says nothing for 6 s (flow time)
        Say("agent", confidence=0.3),  # heard, but unclear
        HangUp(),
    ], clock=ScaledClock(0.01))
    task = agent.start()

An action waits for its turn: a ``Say`` or ``Press`` is performed when the
flow listens (a listen, collect_dtmf or record is active), a ``barge_in``
one as soon as the next interruptible prompt starts (and only then), a
``HangUp`` at once. Actions
can be added while the call runs (:meth:`add`), which is how ``voxflow chat``
feeds it what the person types. With the queue empty the caller is silent,
or hangs up when the flow next listens if ``when_done="hangup"``.

Time is the given :class:`~engine.voice.clock.Clock`'s: with a
``ScaledClock(0.01)`` on both sides, ``Silence(30)`` passes in 0.3 s.
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from engine.voice.bus import START, StreamCursor, VoiceBus
from engine.voice.clock import REAL_CLOCK, Clock
from engine.voice.messages import (
    AgentJoined,
    AgentLeft,
    CallerLeft,
    CollectDtmf,
    Command,
    Dtmf,
    ErrorEvent,
    Event,
    Hangup,
    HangupComplete,
    Listen,
    Play,
    Record,
    RecordComplete,
    Speak,
    SpeechComplete,
    SpeechPartial,
    SpeechStarted,
    Stop,
    Transfer,
    TransferComplete,
    TtsComplete,
    TtsInterrupted,
    TtsStarted,
)

AGENT_STATE_OWNER = "agent"


@dataclass(frozen=True)
class Say:
    """The caller says ``text``, taking ``duration`` seconds (cut at the listen's max_duration)."""

    text: str
    confidence: float | None = 0.95
    barge_in: bool = False
    duration: float = 1.5


@dataclass(frozen=True)
class Press:
    """The caller presses ``keys`` ("12#"), ``gap`` seconds apart."""

    keys: str
    barge_in: bool = False
    gap: float = 0.0


@dataclass(frozen=True)
class Silence:
    """The caller says nothing for ``seconds``, counted from when the flow first listens."""

    seconds: float


@dataclass(frozen=True)
class HangUp:
    """The caller hangs up."""


CallerAction: TypeAlias = Say | Press | Silence | HangUp
InputRequest: TypeAlias = Listen | CollectDtmf | Record


@dataclass(frozen=True)
class Line:
    """One line of the transcript: who, and what (``[...]`` for things that are not words)."""

    speaker: Literal["agent", "caller"]
    text: str
    interrupted: bool = False


class SimulatedAgent:
    def __init__(
        self,
        bus: VoiceBus,
        call_id: str,
        actions: Iterable[CallerAction] = (),
        *,
        clock: Clock = REAL_CLOCK,
        when_done: Literal["silent", "hangup"] = "silent",
        failing_transfers: Iterable[str] = (),
        agent_id: str = "simulator",
        reaction: float = 0.5,
        on_line: Callable[[Line], None] | None = None,
    ) -> None:
        self.bus = bus
        self.call_id = call_id
        self.clock = clock
        self.when_done = when_done
        self.failing_transfers = frozenset(failing_transfers)
        self.agent_id = agent_id
        self.reaction = reaction
        self.on_line = on_line  # e.g. print each line as it happens (voxflow chat)
        self.transcript: list[Line] = []
        self.commands: list[Command] = []
        self.ended = False  # the call is over (hung up or transferred)
        self._actions: deque[CallerAction | _Key | _Gap] = deque(actions)
        self._input: InputRequest | None = None
        self._silent_until: float | None = None
        # A caller answers a moment after the question ends, not the instant it is sent.
        self._ready_at = 0.0
        self._wake = asyncio.Event()
        self._recordings = 0
        self._task: asyncio.Task[None] | None = None

    # ---- driving it -------------------------------------------------------

    def add(self, *actions: CallerAction) -> None:
        """Queue more caller actions (thread-unsafe: call from the agent's event loop)."""
        self._actions.extend(actions)
        self._wake.set()

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.ensure_future(self.run())
        return self._task

    async def stop(self, *, announce: bool = True) -> None:
        """Stop serving the call, as an agent process that goes away (``call:agent_left``)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if announce and not self.ended:
            await self._publish(AgentLeft(reason="simulated agent stopped", agent_id=self.agent_id))

    async def run(self) -> None:
        """Serve the call until it ends (hangup, transfer, the caller hanging up)."""
        previous = await self.bus.load_state(self.call_id, AGENT_STATE_OWNER)
        # A replacement agent starts after the newest command: the plugin side
        # sends again whatever was outstanding when it sees agent_joined.
        after = START if previous is None else await self.bus.last_command_id(self.call_id)
        await self.bus.save_state(self.call_id, AGENT_STATE_OWNER, {"agent_id": self.agent_id})
        cursor: StreamCursor[Command] = StreamCursor(
            functools.partial(self.bus.read_commands, self.call_id), after
        )
        await self._publish(AgentJoined(agent_id=self.agent_id))
        reading: asyncio.Future[tuple[str, Command] | None] | None = None
        woken: asyncio.Future[Any] | None = None
        try:
            while not self.ended:
                await self._act()
                if self.ended:
                    break
                if reading is None:
                    reading = asyncio.ensure_future(cursor.next(5.0))
                woken = asyncio.ensure_future(self._wake.wait())
                waiting: set[asyncio.Future[Any]] = {reading, woken}
                await asyncio.wait(waiting, timeout=self._wait_for(), return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
                self._wake.clear()
                if reading.done():
                    entry, reading = reading.result(), None
                    if entry is not None:
                        await self._handle(entry[1])
        finally:
            if reading is not None:
                reading.cancel()
            if woken is not None:  # stopped mid-wait: else it is left pending at loop close
                woken.cancel()

    def _wait_for(self) -> float | None:
        due = [t for t in (self._silent_until, self._ready_at) if t is not None]
        due = [t for t in due if t > self.clock.monotonic()]
        if not due:
            return None
        return self.clock.real(min(due) - self.clock.monotonic())

    # ---- commands ---------------------------------------------------------

    async def _handle(self, command: Command) -> None:
        self.commands.append(command)
        if isinstance(command, (Speak, Play)):
            await self._output(command)
        elif isinstance(command, (Listen, CollectDtmf, Record)):
            self._input = command
            self._ready_at = self.clock.monotonic() + self.reaction
        elif isinstance(command, Stop):
            await self._stop(command.target)
        elif isinstance(command, Transfer):
            await self._transfer(command)
        elif isinstance(command, Hangup):
            self._line(Line("agent", "[hangs up]"))
            await self._publish(HangupComplete(request_id=command.request_id))
            self.ended = True

    async def _output(self, command: Speak | Play) -> None:
        rid = command.request_id
        text = command.text if isinstance(command, Speak) else f"[plays {command.audio}]"
        await self._publish(TtsStarted(request_id=rid))
        head = self._actions[0] if self._actions else None
        cuts_in = isinstance(head, (Say, Press)) and head.barge_in and command.interruptible
        # A prompt that cannot be cut is heard out; a barge_in action then waits its turn.
        if not cuts_in:
            self._line(Line("agent", text))
            await self._publish(TtsComplete(request_id=rid))
            self._ready_at = self.clock.monotonic() + self.reaction
            return
        self._line(Line("agent", text, interrupted=True))
        action = self._actions.popleft()
        # Input goes to the active listen if there is one, else to the prompt it cut.
        target = self._input.request_id if self._input is not None else rid
        # As with real audio: the caller's voice or key comes first, and stops the prompt.
        if isinstance(action, Say):
            await self._speak(action, target, after_start=TtsInterrupted(request_id=rid, by="speech"))
        elif isinstance(action, Press):
            self._queue_keys(action)
            first = self._actions.popleft()
            assert isinstance(first, _Key)
            await self._press(first.key, rid if self._input is None else None)
            await self._publish(TtsInterrupted(request_id=rid, by="dtmf", digit=first.key))
            await self._act()

    async def _stop(self, target: str) -> None:
        if self._input is None or self._input.request_id != target:
            return
        request, self._input = self._input, None
        if isinstance(request, Record):
            await self._publish(RecordComplete(request_id=target, url=self._recording_url()))

    async def _transfer(self, command: Transfer) -> None:
        self._line(Line("agent", f"[transfers to {command.destination}]"))
        if command.destination in self.failing_transfers:
            await self._publish(
                ErrorEvent(
                    request_id=command.request_id,
                    code="transfer",
                    message=f"the transfer to {command.destination} failed: busy",
                )
            )
            return
        await self._publish(TransferComplete(request_id=command.request_id))
        self.ended = True

    # ---- the caller ---------------------------------------------------------

    async def _act(self) -> None:
        """Perform the caller's actions that are due now."""
        while not self.ended:
            if not self._actions:
                if self.when_done == "hangup" and self._input is not None:
                    self._actions.append(HangUp())
                    continue
                return
            head = self._actions[0]
            if isinstance(head, (_Key, _Gap)):
                # The rest of a key sequence: typed on, whether the flow listens or not.
                if isinstance(head, _Gap) and not self._waited(head.seconds):
                    return
                self._actions.popleft()
                if isinstance(head, _Key):
                    await self._press(head.key)
                continue
            if isinstance(head, HangUp):
                self._actions.popleft()
                self._line(Line("caller", "[hangs up]"))
                await self._publish(CallerLeft(reason="the caller hung up"))
                self.ended = True
                return
            if self._input is None:
                return  # the caller waits for the flow to listen
            if isinstance(head, (Say, Press)) and head.barge_in:
                return  # it waits for a prompt to cut into (see _output)
            if isinstance(head, Silence):
                if not self._waited(head.seconds):
                    return
                self._actions.popleft()
                continue
            if self.clock.monotonic() < self._ready_at:
                return  # still taking in the question
            self._actions.popleft()
            if isinstance(head, Say):
                await self._speak(head, self._input.request_id)
            else:
                self._queue_keys(head)

    def _waited(self, seconds: float) -> bool:
        """Whether a pause of ``seconds``, started the first time this is asked, is over."""
        now = self.clock.monotonic()
        if self._silent_until is None:
            self._silent_until = now + seconds
        if now < self._silent_until:
            return False
        self._silent_until = None
        return True

    def _queue_keys(self, press: Press) -> None:
        """Keys become single presses, ``gap`` seconds apart, typed in one go."""
        steps: list[_Key | _Gap] = []
        for index, key in enumerate(press.keys):
            if index and press.gap > 0:
                steps.append(_Gap(press.gap))
            steps.append(_Key(key))
        self._actions.extendleft(reversed(steps))

    async def _speak(self, say: Say, rid: str, after_start: Event | None = None) -> None:
        request = self._input if self._input is not None and self._input.request_id == rid else None
        text, seconds = say.text, say.duration
        if isinstance(request, Listen) and say.duration > request.max_duration:
            # The agent cuts an answer at max_duration: keep the words said by then.
            spoken = say.text.split()
            kept = max(1, int(len(spoken) * request.max_duration / say.duration))
            text, seconds = " ".join(spoken[:kept]), request.max_duration
        self._line(Line("caller", say.text))
        await self._publish(SpeechStarted(request_id=rid))
        if after_start is not None:
            await self._publish(after_start)
        half = " ".join(text.split()[: max(1, len(text.split()) // 2)])
        await self._publish(SpeechPartial(request_id=rid, transcript=half, confidence=say.confidence))
        if isinstance(request, Record):
            self._input = None
            await self._publish(
                RecordComplete(request_id=rid, url=self._recording_url(), transcript=text, duration=seconds)
            )
            return
        await self._publish(SpeechComplete(request_id=rid, transcript=text, confidence=say.confidence))
        if isinstance(request, Listen):
            self._input = None

    async def _press(self, key: str, rid: str | None = None) -> None:
        request = self._input
        if rid is None:
            rid = request.request_id if request is not None else ""
        self._line(Line("caller", f"[presses {key}]"))
        await self._publish(Dtmf(request_id=rid, digit=key))
        if isinstance(request, Listen) and request.dtmf:
            self._input = None  # a menu key answers the listen
        elif isinstance(request, Record) and key == request.finish_on_key:
            self._input = None
            await self._publish(RecordComplete(request_id=rid, url=self._recording_url()))

    def _line(self, line: Line) -> None:
        self.transcript.append(line)
        if self.on_line is not None:
            self.on_line(line)

    def _recording_url(self) -> str:
        self._recordings += 1
        return f"memory://recordings/{self.call_id}/{self._recordings}.wav"

    async def _publish(self, event: Event) -> None:
        await self.bus.publish_event(self.call_id, event)


@dataclass(frozen=True)
class _Key:
    """One key of a Press."""

    key: str


@dataclass(frozen=True)
class _Gap:
    """The pause between two keys of a Press."""

    seconds: float
