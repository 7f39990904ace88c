"""The bus agent: one call's voice bus commands in, session actions out, events back.

It is the LiveKit agent minus the room: it drives a :class:`CallVoice` (an
AgentSession with STT, TTS and VAD) and a :class:`CallControl` (transfer, hang
up), so the same class serves a phone call (engine.agent.worker) and the
audio harness (tests, ``bench/``, audio chat). It keeps the contract in
engine.voice.messages, as engine.voice.simulated_agent does without audio:

    agent = BusAgent(bus, call_id, harness.voice, LocalCallControl())
    task = agent.start()          # agent_joined, then commands until the call ends

Joining: the first agent of a call reads commands from the start (some may
be waiting). An agent that replaces another (the bus remembers that one
served the call) starts after the newest command and first publishes
``call:agent_left`` for its predecessor, then ``agent_joined``: the plugin
side then sends again whatever was outstanding, whether or not the old agent
lived to say it was leaving. The workflow waits on the bus, not on an agent
process, so a call survives its agent.

Events go out in the order they happen, through one outbox task, so that
e.g. the caller's ``speech:started`` precedes the ``tts:interrupted`` it caused.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from engine.agent.call_spans import CallSpans
from engine.agent.control import CallControl, CallControlError
from engine.agent.listening import CallerListener, ListeningOptions
from engine.agent.next_prompts import NextPrompts, prepare_next_from_env
from engine.agent.prompts import PromptPlayer
from engine.agent.session import CallVoice
from engine.voice.bus import START, StreamCursor, VoiceBus
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
    SpeechStarted,
    Stop,
    Transfer,
    TransferComplete,
    TtsComplete,
    TtsInterrupted,
)

AGENT_STATE_OWNER = "agent"  # the bus document an agent keeps (shared with the simulator)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BusAgentOptions:
    """``prepare_next``: while the caller has the turn, synthesise what the call may say
    next into the prompt cache (engine.agent.next_prompts; ``VOXFLOW_PREPARE_NEXT=off``).
    ``flow_prompts``: the fixed texts of the call's flow version, prepared whenever the
    agent is quiet (``voxflow agent`` gets them with the call's context)."""

    listening: ListeningOptions = field(default_factory=ListeningOptions)
    read_timeout: float = 1.0  # how long one read of the command stream waits
    prepare_next: bool = field(default_factory=prepare_next_from_env)
    flow_prompts: tuple[str, ...] = ()


class BusAgent:
    def __init__(
        self,
        bus: VoiceBus,
        call_id: str,
        voice: CallVoice,
        control: CallControl,
        *,
        agent_id: str | None = None,
        options: BusAgentOptions = BusAgentOptions(),
    ) -> None:
        self.bus = bus
        self.call_id = call_id
        self.voice = voice
        self.control = control
        self.agent_id = agent_id or f"agent-{uuid.uuid4().hex[:8]}"
        self.options = options
        self.commands: list[Command] = []  # every command served, in order (tests, logs)
        self.ended: str | None = None  # why the call ended for us: hangup, transfer, caller_left
        self.joined = asyncio.Event()
        self._outbox: asyncio.Queue[Event | None] = asyncio.Queue()
        self._spans = CallSpans(call_id)  # trace spans and TTS/STT latency
        self._stopping = asyncio.Event()
        self._prompts: PromptPlayer | None = None
        self._listener: CallerListener | None = None
        self._next: NextPrompts | None = None
        self._task: asyncio.Task[str | None] | None = None
        self._side_tasks: set[asyncio.Task[Any]] = set()

    # ---- lifetime ------------------------------------------------------------

    def start(self) -> asyncio.Task[str | None]:
        self._task = asyncio.ensure_future(self.run())
        return self._task

    async def run(self) -> str | None:
        """Serve the call until it ends (hangup, transfer, the caller hanging up) or
        :meth:`leave`; returns why it ended (None when it left)."""
        publisher = asyncio.ensure_future(self._publish_all())
        try:
            cursor = await self._join()
            self._prompts = PromptPlayer(self.voice, self._publish)
            self._listener = CallerListener(
                self.voice, self._prompts, self._publish, self.call_id, self.options.listening
            )
            self._next = NextPrompts(self.voice, self._prompts.speaking, enabled=self.options.prepare_next)
            self._next.prepare_flow(self.options.flow_prompts)
            self.joined.set()
            await self._serve(cursor)
            return self.ended
        finally:
            if self._next is not None:
                self._next.close()
            if self._listener is not None:
                self._listener.close()
            if self._prompts is not None:
                self._prompts.close()
            for task in self._side_tasks:
                task.cancel()
            self._spans.close()
            self._outbox.put_nowait(None)
            await asyncio.shield(publisher)

    async def leave(self, reason: str = "the agent is shutting down") -> None:
        """Stop serving, telling the plugin side (``call:agent_left``) unless the call ended."""
        if self.ended is None:
            self._hush()  # nothing said after this would be heard
        await self._stop_serving()
        if self.ended is None:
            await self.bus.publish_event(self.call_id, AgentLeft(reason=reason, agent_id=self.agent_id))
            await self.bus.save_state(
                self.call_id, AGENT_STATE_OWNER, {"agent_id": self.agent_id, "left": True}
            )

    async def abandon(self) -> None:
        """Stop serving without a word, as an agent process that dies does (tests)."""
        self._hush()  # a dead process stops talking too
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    def _hush(self) -> None:
        try:
            self.voice.session.interrupt(force=True)
        except RuntimeError:
            pass  # the session is closed already: silent anyway

    # ---- from the room ---------------------------------------------------------

    def dtmf(self, digit: str) -> None:
        """The caller pressed a key (LiveKit's sip_dtmf_received)."""
        if self._listener is not None and self.ended is None:
            self._listener.dtmf(digit)

    def typed(self, text: str) -> None:
        """The caller typed ``text`` instead of saying it (voxflow dev's typed caller)."""
        if self._listener is not None and self.ended is None and text.strip():
            self._listener.typed(text.strip())

    def caller_left(self, reason: str = "the caller hung up") -> None:
        """The caller's side of the call is gone."""
        if self.ended is None:
            self._publish(CallerLeft(reason=reason))
            self._end("caller_left")

    # ---- serving -----------------------------------------------------------------

    async def _join(self) -> StreamCursor[Command]:
        previous = await self.bus.load_state(self.call_id, AGENT_STATE_OWNER)
        after = START if previous is None else await self.bus.last_command_id(self.call_id)
        await self.bus.save_state(
            self.call_id,
            AGENT_STATE_OWNER,
            {"agent_id": self.agent_id, "left": False, "joined_at": time.time()},
        )
        if previous is not None:
            # Said for the old agent even if it said so itself: a process that died
            # could not, and the plugin side re-sends what is outstanding on seeing both.
            old_id = str(previous.get("agent_id", ""))
            self._publish(
                AgentLeft(reason=f"the agent {old_id} was replaced by {self.agent_id}", agent_id=old_id)
            )
        self._publish(AgentJoined(agent_id=self.agent_id))
        return StreamCursor(functools.partial(self.bus.read_commands, self.call_id), after)

    async def _serve(self, cursor: StreamCursor[Command]) -> None:
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            while not self._stopping.is_set():
                reading = asyncio.ensure_future(cursor.next(self.options.read_timeout))
                await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not reading.done():
                    reading.cancel()
                    break
                entry = reading.result()
                if entry is not None:
                    await self._handle(entry[1])
        finally:
            stopping.cancel()

    async def _handle(self, command: Command) -> None:
        self.commands.append(command)
        self._spans.command(command)
        assert self._prompts is not None and self._listener is not None and self._next is not None
        if isinstance(command, Speak | Play):
            self._next.pause()  # what the caller waits for goes first
        if isinstance(command, Speak):
            await self._prompts.speak(command)
        elif isinstance(command, Play):
            await self._prompts.play(command)
        elif isinstance(command, Listen):
            self._listener.listen(command)
            self._next.turn_opened(command.request_id, command.upcoming)
        elif isinstance(command, CollectDtmf):
            self._listener.collect_dtmf(command)
            self._next.turn_opened(command.request_id, command.upcoming)
        elif isinstance(command, Record):
            await self._listener.record(command)
            self._next.turn_opened(command.request_id, command.upcoming)
        elif isinstance(command, Stop):
            if not self._prompts.stop(command.target):
                self._listener.stop(command.target)
            self._next.turn_ended(command.target)
        elif isinstance(command, Transfer):
            self._next.turn_ended()
            self._spawn(self._transfer(command))
        elif isinstance(command, Hangup):
            self._next.turn_ended()
            await self._hangup(command)

    async def _transfer(self, command: Transfer) -> None:
        try:
            await self.control.transfer(command.destination)
        except CallControlError as error:
            self._publish(ErrorEvent(request_id=command.request_id, code="transfer", message=str(error)))
            return
        self._publish(TransferComplete(request_id=command.request_id))
        self._end("transfer")

    async def _hangup(self, command: Hangup) -> None:
        # Confirmed first: hanging up a LiveKit call deletes the room, and this
        # process with it.
        self._publish(HangupComplete(request_id=command.request_id))
        await self._drain_outbox()
        try:
            await self.control.hangup(command.reason)
        except CallControlError as error:
            log.warning("hanging up call %s failed: %s", self.call_id, error)
        self._end("hangup")

    def _end(self, why: str) -> None:
        if self.ended is None:
            self.ended = why
        self._stopping.set()

    async def _stop_serving(self) -> None:
        self._stopping.set()
        if self._task is not None and not self._task.done():
            await asyncio.wait({self._task}, timeout=5.0)

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    # ---- publishing ----------------------------------------------------------------

    def _publish(self, event: Event) -> None:
        self._outbox.put_nowait(self._spans.event(event))
        if self._next is not None:
            self._turn_news(self._next, event)

    @staticmethod
    def _turn_news(next_prompts: NextPrompts, event: Event) -> None:
        """What preparing the next prompts needs to know of what happened on the call."""
        if isinstance(event, SpeechComplete | RecordComplete | Dtmf | CallerLeft):
            next_prompts.turn_ended()  # answered: the reply comes now
        elif isinstance(event, SpeechStarted):
            next_prompts.caller_spoke()
        elif isinstance(event, TtsComplete | TtsInterrupted | ErrorEvent):
            next_prompts.prompt_over()

    async def _publish_all(self) -> None:
        while (event := await self._outbox.get()) is not None:
            try:
                await self.bus.publish_event(self.call_id, event)
            except Exception:  # noqa: BLE001 - one lost event must not stop the call
                log.exception("could not publish %s for call %s", type(event).__name__, self.call_id)
            finally:
                self._outbox.task_done()
        self._outbox.task_done()

    async def _drain_outbox(self) -> None:
        await self._outbox.join()
