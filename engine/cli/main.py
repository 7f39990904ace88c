"""``voxflow``: the command line. One module per command, each a plain function.

Every command module in :data:`COMMANDS` provides ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``; only the module of the
command being run is imported (so ``--help`` is instant). ``main`` turns a
:class:`VoxflowError` into its message and exit code 1, Ctrl-C into 130,
and anything unexpected into exit code 3 with the traceback written to a
log file rather than the screen.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path

from engine.core.errors import VoxflowError
from engine.core.output import print_error

# command name → (module under engine.cli, its one-line HELP). The module is imported only
# when its command runs, so `voxflow --help` and `voxflow validate` never pay for the
# server, the Temporal client or the voice agent. tests/test_cli.py checks that each HELP
# here is the module's own.
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": (
        "engine.cli.validate",
        "Check flow and trigger files and explain every problem found.",
    ),
    "schema": (
        "engine.cli.schema",
        "Write flow.schema.json and trigger.schema.json (from the installed node types).",
    ),
    "graph": (
        "engine.cli.graph",
        "Draw a flow as a diagram (Mermaid, which GitHub shows in Markdown, or Graphviz DOT).",
    ),
    "diff": (
        "engine.cli.diff",
        "Show what changed in a call between two versions of a flow (files or REV:path from git).",
    ),
    "docs": (
        "engine.cli.docs",
        "Write the node reference (every node type, its fields and outputs) as Markdown.",
    ),
    "worker": (
        "engine.cli.worker",
        "Run the worker that runs calls (Temporal workflows and node activities).",
    ),
    "agent": (
        "engine.cli.agent",
        "Run the LiveKit voice agent that answers calls (speech recognition and synthesis).",
    ),
    "chat": (
        "engine.cli.chat",
        "Call a flow from the terminal, as the caller, on the real engine.",
    ),
    "test": (
        "engine.cli.test",
        "Run the conversation tests beside the flows (flows/tests/*.test.yaml).",
    ),
    "serve": (
        "engine.cli.serve",
        "Run the telephony server: Telnyx webhooks, API, live events, monitor page.",
    ),
    "dev": (
        "engine.cli.dev",
        "Run everything on this machine: Temporal, Redis, worker, server, a voice agent "
        "and the monitor page, where you can call your flows.",
    ),
    "livekit": (
        "engine.cli.livekit",
        "Set up LiveKit for voxflow: the SIP inbound trunk and the dispatch rule.",
    ),
    "connections": (
        "engine.cli.connections",
        "Named credentials (Telnyx, Twilio, LiveKit, databases, an LLM), stored encrypted.",
    ),
    "numbers": (
        "engine.cli.numbers",
        "Phone numbers on Telnyx or Twilio: search, buy, assign to a flow, list, release.",
    ),
    "stats": (
        "engine.cli.stats",
        "Call analytics from the call records: endings, durations, where callers drop off.",
    ),
    "models": (
        "engine.cli.models",
        "Fetch the optional models (the Smart Turn end-of-turn model) into this machine's cache.",
    ),
}

EXIT_OK = 0
EXIT_USER_ERROR = 1
EXIT_UNEXPECTED = 3
EXIT_INTERRUPTED = 130


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the command named in ``argv`` (if any) is imported and given its options."""
    parser = argparse.ArgumentParser(
        prog="voxflow",
        description="Voice call flows written in YAML, run as durable workflows.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = _command_in(sys.argv[1:] if argv is None else argv)
    for name, (module_name, help_text) in COMMANDS.items():
        if name != wanted:
            subparsers.add_parser(name, help=help_text, description=help_text)
            continue
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def _command_in(argv: Sequence[str]) -> str | None:
    """The command word of a command line (the first argument not starting with '-')."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser(argv)
        args = parser.parse_args(argv)
        if not getattr(args, "run", None):
            parser.print_help()
            return EXIT_USER_ERROR
        return int(args.run(args))
    except VoxflowError as error:
        print_error(error)
        return EXIT_USER_ERROR
    except BrokenPipeError:
        # The reader went away (e.g. `voxflow validate | head`): not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SystemExit as exit_:  # argparse's --help and usage errors
        return exit_.code if isinstance(exit_.code, int) else EXIT_USER_ERROR
    except Exception:
        log = Path(tempfile.gettempdir()) / "voxflow-crash.log"
        log.write_text(traceback.format_exc(), encoding="utf-8")
        print(
            f"voxflow hit an unexpected problem; this is a bug in voxflow, not in your files.\n"
            f"The details are in {log}; please include that file when you report it.",
            file=sys.stderr,
        )
        return EXIT_UNEXPECTED


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
