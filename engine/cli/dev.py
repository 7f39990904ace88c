"""``voxflow dev``: the whole phone system on this machine, in one command.

Embedded Temporal, embedded Redis (or the in-memory voice bus), SQLite call
records, a worker, the server on localhost:8080 with hot reload of flows/,
and the monitor page. Ctrl-C stops everything. See engine.dev.stack.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.dev.stack import DevOptions, run_dev

HELP = (
    "Run everything on this machine: Temporal, Redis, worker, server, a voice agent "
    "and the monitor page, where you can call your flows."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8080, help="server port (default 8080)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)"
    )
    parser.add_argument(
        "--flows", default="flows", metavar="FOLDER", help="the folder of flows and triggers (default flows)"
    )
    parser.add_argument(
        "--state-dir",
        default=".voxflow",
        metavar="FOLDER",
        help="where Temporal's state and the call records are kept (default .voxflow)",
    )
    parser.add_argument(
        "--memory-bus",
        action="store_true",
        help="use the in-memory voice bus instead of the embedded Redis "
        "(then no separate 'voxflow agent' process can join calls)",
    )
    parser.add_argument(
        "--no-agent",
        action="store_true",
        help="run no voice agent (calls wait for a 'voxflow agent' you start)",
    )
    parser.add_argument(
        "--livekit",
        action="store_true",
        help="also run a LiveKit server on this machine (the test bed: build it "
        "once with 'voxflow livekit build') and set LIVEKIT_URL, LIVEKIT_API_KEY "
        "and LIVEKIT_API_SECRET for the rest of dev",
    )


def run(args: argparse.Namespace) -> int:
    return run_dev(
        DevOptions(
            host=args.host,
            port=args.port,
            flows=Path(args.flows),
            state_dir=Path(args.state_dir),
            memory_bus=args.memory_bus,
            agent=not args.no_agent,
            livekit=args.livekit,
        )
    )
