"""``voxflow chat FLOW``: call a flow from the terminal, as the caller, without a phone.

It runs the flow on the real engine in this process (the embedded Temporal
dev server unless TEMPORAL_ADDRESS is set, a worker, a voice bus in memory
or on Redis) and plays the caller: what you type is what the caller says,
``#1`` presses a key, ``/silence 6`` stays silent, ``/hangup`` hangs up
(``/help`` lists everything). What the agent says and the nodes the call
walks are shown as they happen. Nodes that call outside services (a web
API, a model, a database) are called for real unless
``--answers FILE`` gives them fixed answers (the format of a conversation
test's ``answers:``, by node id). With ``--audio caller.wav`` the caller is a
recording instead, heard by the voice agent's speech engines, and what the
agent says is written to a WAV (engine.cli.chat_audio). With ``--server URL``
(or when a ``voxflow dev`` is running from this folder) the call is placed on
that server instead, through its caller socket, so it shows on its monitor page
(engine.cli.chat_server). More in docs/trying-flows.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.cli import chat_audio
from engine.core.errors import VoxflowError
from engine.language.compile import FlowGraph
from engine.language.project import check_paths, compile_file
from engine.language.schema import E164_PATTERN
from engine.language.triggers import Trigger
from engine.runtime.config import RuntimeConfig, load_runtime_config
from engine.simulate.chat import ChatSession, external_nodes
from engine.simulate.clock import PausableClock
from engine.simulate.conversation_loader import load_answers_file
from engine.simulate.fixtures import CallAnswers
from engine.simulate.logs import default_log_file, logs_in_file
from engine.simulate.session import (
    BUS_KINDS,
    DEFAULT_CALLER,
    CallSetup,
    EngineOptions,
    SimulatorEngine,
    exit_on_interrupt,
)
from engine.simulate.terminal import TerminalView, start_reader, terminal_restored

HELP = "Call a flow from the terminal, as the caller, on the real engine."
EPILOG = """\
While the call runs, type what the caller says and press Enter. Also:
  #1, #1234#        press keys
  /silence 6        say nothing for 6 seconds (/silence alone: do not answer this question)
  /unclear words    say words the recogniser is unsure of
  /signal NAME {..} send a signal to a node waiting for one
  /variables        show the call's variables
  /hangup           hang up (Ctrl-D too)
The flow's timers (no input, silence) only run while the caller does something,
so take your time to type.

--answers FILE maps node ids to fixed answers, e.g.
  understand: {text: balance}                   # a model's reply
  lookup: {rows: [{balance: "42.17"}]}          # a database's rows
  block_card: {status: 200, body: {ok: true}}   # a web API's answer
  account-balance/lookup: {error: "down"}       # a node of a subflow, failing
(each node type's fields of a fixed answer are in 'voxflow docs')

--audio FILE.wav: the caller is a recording, not you typing. The voice agent's
speech engines hear it and speak (offline, pocketsphinx and espeak-ng, unless
VOXFLOW_STT / VOXFLOW_TTS choose others), in real time, and what the agent says
is written to a WAV file:
  voxflow chat flows/ivr-menu.yaml --audio caller.wav
  voxflow chat flows/ivr-menu.yaml --audio balance.wav yes.wav --out call.wav
One file is the caller's whole side of the call, silences included; several
are one answer each, said in turn when the flow asks. When the caller has
nothing left to say, they hang up. The recording goes to --out (default
<flow>-call.wav here); --both-sides mixes the caller in.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("flow", metavar="FLOW", help="the flow file, e.g. flows/ivr-menu.yaml")
    parser.add_argument(
        "--caller",
        default=DEFAULT_CALLER,
        metavar="NUMBER",
        help=f"the caller's number (default {DEFAULT_CALLER})",
    )
    parser.add_argument(
        "--called", metavar="NUMBER", help="the number dialled (default: the flow's trigger number, if any)"
    )
    parser.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a flow variable (repeatable); VALUE is text, or JSON such as 42 or true",
    )
    parser.add_argument(
        "--answers", metavar="FILE", help="fixed answers for the nodes that call outside services, by node id"
    )
    parser.add_argument(
        "--bus",
        choices=BUS_KINDS,
        default="memory",
        help="the voice bus: in memory (default), or Redis (REDIS_URL, else an embedded redis-server)",
    )
    parser.add_argument(
        "--config", metavar="FILE", help="a voxflow.yaml with database connections and the LLM endpoint"
    )
    parser.add_argument(
        "--audio",
        nargs="+",
        metavar="WAV",
        help="the caller is this recording (one WAV: the whole call; several: "
        "one answer each), heard and answered with real speech engines",
    )
    parser.add_argument(
        "--out",
        metavar="FILE.wav",
        help="with --audio: where to write the call's audio (default <flow>-call.wav in this folder)",
    )
    parser.add_argument(
        "--both-sides", action="store_true", help="with --audio: record the caller too, not only the agent"
    )
    parser.add_argument(
        "--server",
        metavar="URL",
        help="place the call on this running voxflow server (e.g. "
        "http://127.0.0.1:8080 of 'voxflow dev'), so it shows on its monitor "
        "page; found on its own when 'voxflow dev' runs from this folder",
    )
    parser.add_argument(
        "--token",
        metavar="TOKEN",
        help="with --server: the server's API token (default "
        "VOXFLOW_API_TOKEN, or the one 'voxflow dev' wrote here)",
    )
    parser.add_argument(
        "--local",
        action="store_true",
        help="run the flow on a private engine in this process even when a 'voxflow dev' is running",
    )


def run(args: argparse.Namespace) -> int:
    if not args.audio and (args.out or args.both_sides):
        raise VoxflowError(
            "--out and --both-sides go with --audio FILE.wav (a call played "
            "from a recording); a typed chat records no audio."
        )
    graph = compile_file(args.flow)
    variables = _variables(args.var, graph)
    trigger = _trigger(Path(args.flow), graph.flow_id)
    called = args.called or (trigger.number if trigger else None)
    for label, number in (("--caller", args.caller), ("--called", called)):
        if number and not _is_number(number):
            raise VoxflowError(
                f"{label} {number} is not a phone number; write it with + and "
                "the country code, e.g. +15551234567."
            )
    answers = load_answers_file(Path(args.answers), graph) if args.answers else {}
    setup = CallSetup(
        caller_number=args.caller,
        called_number=called or "",
        variables=variables,
        answers=CallAnswers(answers),
    )
    server = _server(args)
    if server is not None:
        return _through_server(args, graph, server)
    config = load_runtime_config(config_file=args.config)
    if args.audio:
        return _audio(args, graph, setup, config, trigger.language if trigger else None)
    view = TerminalView()
    _banner(view, args, graph, setup, bool(answers))
    with logs_in_file(default_log_file("chat")) as log, terminal_restored() as restore:

        def interrupted() -> None:
            view.stop_prompting()
            restore()
            print("Interrupted.", file=sys.stderr)

        try:
            asyncio.run(_chat(view, graph, setup, EngineOptions(bus=args.bus, config=config), interrupted))
        finally:
            view.stop_prompting()
    view.say(f"(the engine's log is in {log})", "dim")
    return 0


async def _chat(
    view: TerminalView,
    graph: FlowGraph,
    setup: CallSetup,
    options: EngineOptions,
    interrupted: Callable[[], None],
) -> None:
    clock = PausableClock()
    options.clock = clock
    view.say("Starting the engine...", "dim")
    async with SimulatorEngine(options) as engine:
        exit_on_interrupt(engine, interrupted)
        view.say(f"Ready ({engine.where}). The call begins.", "dim")
        view.say()
        session = ChatSession(engine, graph, setup, view, clock)
        start_reader(asyncio.get_running_loop(), session.type_threadsafe, view)
        await session.run()


def _banner(
    view: TerminalView, args: argparse.Namespace, graph: FlowGraph, setup: CallSetup, with_answers: bool
) -> None:
    view.say(f"voxflow chat: {graph.flow_id} ({args.flow})", "bold")
    if graph.description:
        view.say(f"  {graph.description.strip()}", "dim")
    to = f" {setup.called_number}" if setup.called_number else ""
    view.say(f"You are the caller: you call{to} from {setup.caller_number}.")
    view.say(
        "Type what you say and press Enter. #1 presses 1, /silence 6 stays silent, "
        "/hangup hangs up, /help shows more."
    )
    view.say("The flow waits while you type: its timers only run while you are doing something.")
    outside = external_nodes(graph)
    if outside and not with_answers:
        view.say(
            f"Nodes that call outside services: {', '.join(outside)}. They are called "
            "for real; if that fails, the flow takes their error exit.",
            "yellow",
        )
        suggestion = Path(args.flow).parent / "tests" / f"{Path(args.flow).stem}.answers.yaml"
        if suggestion.is_file():
            view.say(f"To use fixed answers instead: --answers {suggestion}", "yellow")
        else:
            view.say("To use fixed answers instead: --answers FILE (see voxflow chat --help).", "yellow")


def _variables(pairs: list[str], graph: FlowGraph) -> dict[str, Any]:
    variables: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise VoxflowError(f"--var {pair}: write it as NAME=VALUE, e.g. --var caller_name=Sam.")
        if name not in graph.variables:
            known = ", ".join(sorted(graph.variables)) or "none"
            raise VoxflowError(
                f"--var {pair}: the flow '{graph.flow_id}' has no variable '{name}' (its variables: {known})."
            )
        try:
            variables[name] = json.loads(text)
        except ValueError:
            variables[name] = text  # plain text needs no quotes
    return variables


def _audio(
    args: argparse.Namespace, graph: FlowGraph, setup: CallSetup, config: RuntimeConfig, language: str | None
) -> int:
    chat = chat_audio.prepare(graph, args.audio, args.out, both_sides=args.both_sides, language=language)
    view = TerminalView(interactive=False)
    view.say(
        f"voxflow chat: {graph.flow_id} ({args.flow}), the caller's audio from "
        f"{', '.join(str(p) for p in chat.caller)}",
        "bold",
    )
    view.say(
        f"Speech: {chat.choice.stt} recognition, {chat.choice.tts} synthesis, "
        f"{chat.language}. The agent's audio goes to {chat.out}.",
        "dim",
    )
    if external_nodes(graph) and not setup.answers.answers:
        view.say(
            "Nodes that call outside services are called for real (--answers FILE gives them fixed answers).",
            "yellow",
        )
    with logs_in_file(default_log_file("chat")) as log:
        chat_audio.run(view, graph, setup, EngineOptions(bus=args.bus, config=config), chat)
    view.say(f"(the engine's log is in {log})", "dim")
    return 0


def _server(args: argparse.Namespace) -> str | None:
    """The server to call through: --server, else a voxflow dev running from here."""
    if args.server:
        local_only = [
            flag
            for flag, used in (
                ("--audio", args.audio),
                ("--answers", args.answers),
                ("--var", args.var),
                ("--config", args.config),
            )
            if used
        ]
        if local_only:
            raise VoxflowError(f"{', '.join(local_only)} only work on a private engine; leave out --server.")
        return str(args.server)
    if args.local or args.audio or args.answers or args.var or args.config:
        return None
    from engine.dev.agent_choice import find_running

    found = find_running()
    return found[0] if found else None


def _through_server(args: argparse.Namespace, graph: FlowGraph, url: str) -> int:
    from engine.cli import chat_server
    from engine.dev.agent_choice import find_running

    token = chat_server.token_for(url, args.token, find_running())
    view = TerminalView()
    view.say(f"voxflow chat: {graph.flow_id} on the server at {url}", "bold")
    if not args.server:
        view.say(
            "(a running 'voxflow dev' was found here; --local runs the flow on a private engine instead)",
            "dim",
        )
    view.say(
        f"You are the caller: {chat_server.SERVER_COMMANDS}. The call runs the version "
        "of the flow that server serves."
    )
    with terminal_restored():
        try:
            status = asyncio.run(
                chat_server.call_through_server(view, url, token, graph.flow_id, args.caller)
            )
        finally:
            view.stop_prompting()
    return 0 if status in ("completed", "transferred", "user_hangup") else 1


def _trigger(flow_file: Path, flow_id: str) -> Trigger | None:
    """The trigger that starts this flow, when the flow's folder has one."""
    if not (flow_file.parent / "triggers").is_dir():
        return None
    try:
        found = check_paths([flow_file.parent]).triggers
    except VoxflowError:
        return None
    return next((t for t in found if t.flow == flow_id), None)


def _is_number(text: str) -> bool:
    return re.fullmatch(E164_PATTERN, text) is not None


if __name__ == "__main__":  # pragma: no cover - `voxflow chat` is the entry point
    from engine.cli.main import main

    sys.exit(main(["chat", *sys.argv[1:]]))
