"""One interactive call: what a person types becomes what the caller does.

``ChatSession`` runs a :class:`~engine.simulate.session.SimulatedCall` and
turns typed lines into caller actions:

=================  ==========================================================
``words``          the caller says them
``#1``, ``#123#``  the caller presses keys (everything after the first ``#``)
``/silence 6``     the caller says nothing for 6 seconds
``/silence``       the caller does not answer the question being asked
``/unclear words`` the caller says words the recogniser is unsure of (confidence 0.3)
``/signal NAME``   the outside world sends the signal NAME (``/signal NAME {"a": 1}``)
``/variables``     show the call's variables
``/hangup``        the caller hangs up (so does the end of input, Ctrl-D)
``/help``          this list
=================  ==========================================================

What the agent says, the nodes the call walks (``→ menu (<its type>)``,
from the call's ``state`` query, subflows included) and nodes that failed
are shown through a :class:`ChatView`. Time stands still while the caller
has nothing to do (see engine.simulate.clock), so the flow waits as long as
the person takes to type.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from temporalio.exceptions import TemporalError

from engine.language.compile import FlowGraph
from engine.language.registry import calls_outside
from engine.runtime import messages as m
from engine.runtime.calls import send_signal
from engine.simulate.caller import NoAnswer, ScriptAction
from engine.simulate.clock import PausableClock
from engine.simulate.progress import PathFollower, Step
from engine.simulate.session import CallSetup, SimulatedCall, SimulatorEngine
from engine.voice.simulated_agent import HangUp, Line, Press, Say, Silence

UNCLEAR_CONFIDENCE = 0.3
POLL_SECONDS = 0.25
CLEANUP_SECONDS = 2.0  # at most, for the last look and hanging up at the end
HELP_TEXT = """\
  words            say them
  #1   #123#       press keys (everything after the first #; ## presses #)
  /silence 6       say nothing for 6 seconds
  /silence         do not answer this question (the flow's no-input timeout passes)
  /unclear words   say words the recogniser is unsure of
  /signal NAME     send the signal NAME, e.g. /signal supervisor_decision {"approved": true}
  /variables       show the call's variables
  /hangup          hang up (Ctrl-D does too)"""
_KEYS = re.compile(r"^[0-9*#]+$")


class ChatView(Protocol):
    """Where a chat shows things. ``kind``: agent, caller, node, warning, note, end."""

    def show(self, kind: str, text: str) -> None: ...


@dataclass
class Command:
    """A typed line, understood: caller actions, or something for the session to do."""

    actions: tuple[ScriptAction, ...] = ()
    signal: tuple[str, Any] | None = None
    show_help: bool = False
    show_variables: bool = False
    problem: str = ""
    hang_up: bool = False


def _silence(rest: str) -> Command:
    if not rest:
        return Command(actions=(NoAnswer(),))
    try:
        seconds = float(rest.removesuffix("s"))
    except ValueError:
        seconds = -1.0
    if seconds <= 0:
        return Command(problem="/silence takes a number of seconds, e.g. /silence 6")
    return Command(actions=(Silence(seconds),))


def _unclear(rest: str) -> Command:
    if not rest:
        return Command(problem="/unclear takes the words, e.g. /unclear my balance")
    return Command(actions=(Say(rest, confidence=UNCLEAR_CONFIDENCE),))


def _signal(rest: str) -> Command:
    name, _, payload_text = rest.partition(" ")
    if not name:
        return Command(problem='/signal takes a name, e.g. /signal supervisor_decision {"approved": true}')
    payload: Any = None
    if payload_text.strip():
        try:
            payload = json.loads(payload_text)
        except ValueError:
            return Command(problem='the signal\'s data must be JSON, e.g. {"approved": true}')
    return Command(signal=(name, payload))


# The slash commands: the words that name each, and what the rest of the line becomes.
_SLASH_COMMANDS: tuple[tuple[tuple[str, ...], Callable[[str], Command]], ...] = (
    (("help", "?"), lambda rest: Command(show_help=True)),
    (("hangup", "hang-up", "bye", "quit", "exit"), lambda rest: Command(actions=(HangUp(),), hang_up=True)),
    (("variables", "vars"), lambda rest: Command(show_variables=True)),
    (("silence",), _silence),
    (("unclear",), _unclear),
    (("signal",), _signal),
)
_SLASH = {word: parse for words, parse in _SLASH_COMMANDS for word in words}


def parse_line(text: str) -> Command | None:
    """What a typed line means; None for an empty line."""
    text = text.strip()
    if not text:
        return None
    if text.startswith("#"):
        keys = text[1:]
        if not keys or not _KEYS.match(keys):
            return Command(problem="after # type the keys to press: 0-9, * and #, e.g. #1 or #1234#")
        return Command(actions=(Press(keys),))
    if not text.startswith("/"):
        return Command(actions=(Say(text),))
    word, _, rest = text[1:].partition(" ")
    parse = _SLASH.get(word.lower())
    if parse is None:
        return Command(problem=f"/{word.lower()} is not a chat command; type /help for the list")
    return parse(rest.strip())


class ChatSession:
    """One chat call. Feed it lines with :meth:`type`; :meth:`run` returns the call's result."""

    def __init__(
        self,
        engine: SimulatorEngine,
        graph: FlowGraph,
        setup: CallSetup,
        view: ChatView,
        clock: PausableClock,
    ) -> None:
        self.engine = engine
        self.graph = graph
        self.view = view
        self.clock = clock
        self.inbox: asyncio.Queue[str | None] = asyncio.Queue()
        self.call = SimulatedCall(
            engine, graph, setup, on_line=self._on_line, on_idle=lambda idle: clock.set_running(not idle)
        )
        self._lines: asyncio.Queue[Line | None] = asyncio.Queue()
        self._hint_given = False
        self._speaker_shown = False  # a voice node was shown that has not spoken yet
        self.result: m.CallResult | None = None

    # ---- feeding it -------------------------------------------------------

    def type(self, text: str | None) -> None:
        """A line the person typed (None: the end of input, which hangs up)."""
        self.inbox.put_nowait(text)

    def type_threadsafe(self, loop: asyncio.AbstractEventLoop, text: str | None) -> None:
        loop.call_soon_threadsafe(self.inbox.put_nowait, text)

    # ---- running it ---------------------------------------------------------

    async def run(self) -> m.CallResult:
        async with self.call:
            ending = asyncio.ensure_future(self.call.result())
            reading = asyncio.ensure_future(self._read_input(ending))
            showing = asyncio.ensure_future(self._show_progress(ending))
            try:
                result = await ending
            except asyncio.CancelledError:
                # Ctrl-C. The embedded Temporal server got it too and may be gone: be brief.
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.wait_for(self.call.hang_up("the chat was interrupted"), CLEANUP_SECONDS)
                raise
            finally:
                reading.cancel()
                self._lines.put_nowait(None)
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.wait_for(showing, CLEANUP_SECONDS)
        self.result = result
        self.view.show("end", f"{result.status} — {result.reason}")
        return result

    async def _read_input(self, ending: asyncio.Future[m.CallResult]) -> None:
        while not ending.done():
            text = await self.inbox.get()
            if text is None:
                self.call.add(HangUp())
                return
            command = parse_line(text)
            if command is None:
                continue
            await self._obey(command)

    async def _obey(self, command: Command) -> None:
        if command.problem:
            self.view.show("warning", command.problem)
        if command.show_help:
            self.view.show("note", HELP_TEXT)
        if command.show_variables:
            await self._show_variables()
        if command.signal is not None:
            name, payload = command.signal
            try:
                await send_signal(self.engine.client, self.call.call_id, name, payload)
                self.view.show("note", f"sent the signal '{name}'")
            except TemporalError as error:
                self.view.show("warning", f"the signal '{name}' could not be sent: {error}")
        if command.actions:
            self.call.add(*command.actions)

    async def _show_variables(self) -> None:
        try:
            snapshot = await self.call.state()
        except TemporalError as error:
            self.view.show("warning", f"the call's variables cannot be read now: {error}")
            return
        shown = {k: v for k, v in snapshot.variables.items() if k != "call_duration"}
        self.view.show("note", json.dumps(shown, indent=2, ensure_ascii=False, default=str))

    def _on_line(self, line: Line) -> None:
        self._lines.put_nowait(line)

    async def _show_progress(self, ending: asyncio.Future[m.CallResult]) -> None:
        """Show each agent line after the node that says it (the only task that shows progress)."""
        follower = PathFollower(self.engine.client, m.workflow_id(self.call.call_id), self.graph)
        while True:
            try:
                line = await asyncio.wait_for(self._lines.get(), POLL_SECONDS)
            except TimeoutError:
                if not ending.done():
                    self._show_steps(await follower.look(up_to_voice=True))
                continue
            if line is None:  # the call is over: everything left
                self._show_steps(await follower.look(up_to_voice=False))
                return
            if line.speaker == "agent":
                # The speaker is the last voice node shown, unless it has spoken already.
                if not self._speaker_shown:
                    self._show_steps(await follower.look(up_to_voice=True))
                self._speaker_shown = False
            self.view.show(line.speaker, line.text.strip() + (" …" if line.interrupted else ""))

    def _show_steps(self, steps: list[Step]) -> None:
        for step in steps:
            if step.kind == "node":
                self.view.show("node", step.text)
                self._speaker_shown = self._speaker_shown or step.voice
            elif step.event is not None:
                self._show_event(step.event)

    def _show_event(self, event: m.CallEvent) -> None:
        if event.kind != "node_failed":
            if event.kind in ("time_warning", "error_handler"):
                self.view.show("note", event.message)
            return
        self.view.show("warning", event.message)
        node_type = _failed_type(event.message)
        if calls_outside(node_type) and not self._hint_given:
            self._hint_given = True
            self.view.show(
                "note",
                "That node calls an outside service. To try the flow "
                "without it, give the node a fixed answer with --answers FILE "
                "('voxflow chat --help' shows how).",
            )


def _failed_type(message: str) -> str:
    match = re.match(r"the node '[^']*' \(([a-z_]+)\)", message)
    return match.group(1) if match else ""


def external_nodes(graph: FlowGraph) -> list[str]:
    """``understand (<type>)``, ``account-balance/lookup (<type>)``: the nodes calling outside services."""
    found: list[str] = []

    def visit(flow: FlowGraph, prefix: str, seen: set[str]) -> None:
        if flow.flow_id in seen:
            return
        seen = seen | {flow.flow_id}
        for node in flow.nodes.values():
            if calls_outside(node.type):
                found.append(f"{prefix}{node.id} ({node.type})")
        for sub in flow.subflows.values():
            visit(sub, f"{sub.flow_id}/", seen)

    visit(graph, "", set())
    return found


__all__ = ["ChatSession", "ChatView", "Command", "external_nodes", "parse_line"]
