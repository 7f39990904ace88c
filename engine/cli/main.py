"""``voxflow``: the command line. One module per command, each a plain function.

Every command module in :data:`COMMANDS` provides ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. ``main`` turns a
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

from engine.cli.output import print_error
from engine.errors import VoxflowError

# command name → module under engine.cli (imported only when that command runs)
COMMANDS: dict[str, str] = {
    "validate": "engine.cli.validate",
    "schema": "engine.cli.schema",
    "graph": "engine.cli.graph",
    "diff": "engine.cli.diff",
    "docs": "engine.cli.docs",
    "worker": "engine.cli.worker",
    "agent": "engine.cli.agent",
    "chat": "engine.cli.chat",
    "test": "engine.cli.test",
    "serve": "engine.cli.serve",
    "dev": "engine.cli.dev",
    "livekit": "engine.cli.livekit",
    "stats": "engine.cli.stats",
}

EXIT_OK = 0
EXIT_USER_ERROR = 1
EXIT_UNEXPECTED = 3
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voxflow",
        description="Voice call flows written in YAML, run as durable workflows.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # a command still being built
            raise
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
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
