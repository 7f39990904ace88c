"""``voxflow livekit setup``: create (or bring up to date) LiveKit's SIP trunk and dispatch rule.

Reads LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET (and, for SIP
authentication, VOXFLOW_SIP_USERNAME / VOXFLOW_SIP_PASSWORD). Safe to run again:
see engine.server.livekit_setup.
"""

from __future__ import annotations

import argparse
import asyncio
import os

from engine.core.errors import VoxflowError
from engine.server.livekit_setup import (
    AGENT_NAME,
    RULE_NAME,
    TRUNK_NAME,
    as_tuple,
    set_up_livekit,
    setup_from_env,
)

HELP = "Set up LiveKit for voxflow: the SIP inbound trunk and the dispatch rule."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="livekit_command", metavar="ACTION")
    setup = sub.add_parser(
        "setup", help="create or update the SIP inbound trunk and the callee dispatch rule (idempotent)"
    )
    setup.add_argument("--trunk-name", default=TRUNK_NAME)
    setup.add_argument("--rule-name", default=RULE_NAME)
    setup.add_argument(
        "--agent-name",
        default=AGENT_NAME,
        help=f"the agent dispatched to each call's room (default {AGENT_NAME})",
    )
    setup.add_argument(
        "--room-prefix",
        default="",
        help="prefix of room names: LiveKit then names rooms "
        "<prefix>_call-<id> (default none: the dialled SIP user, call-<id>, "
        "is the room name)",
    )
    setup.add_argument(
        "--allowed-address",
        action="append",
        metavar="IP_OR_CIDR",
        help="an address allowed to send calls to the trunk (repeat it); "
        "use Telnyx's SIP signalling addresses",
    )
    setup.add_argument(
        "--number",
        action="append",
        metavar="NUMBER",
        help="accept only calls to this dialled user (repeat it); leave out: "
        "voxflow dials call ids, not numbers",
    )

    sub.add_parser(
        "build",
        help="build the LiveKit server for the local test bed from its Go "
        "module (once; cached) and say whether LiveKit SIP can be had",
    )
    bed = sub.add_parser(
        "testbed",
        help="run a LiveKit server on this machine (127.0.0.1) with "
        "fresh keys, its Redis and webhooks to voxflow, until Ctrl-C",
    )
    bed.add_argument(
        "--webhook",
        action="append",
        metavar="URL",
        help="where LiveKit sends its webhooks (default "
        "http://127.0.0.1:8080/webhooks/livekit, voxflow dev's)",
    )


def run(args: argparse.Namespace) -> int:
    if args.livekit_command == "build":
        from engine.testbed import livekit_server

        return livekit_server.main(["build"])
    if args.livekit_command == "testbed":
        from engine.testbed import livekit_server

        return livekit_server.run_foreground(args.webhook or ["http://127.0.0.1:8080/webhooks/livekit"])
    if args.livekit_command != "setup":
        raise VoxflowError(
            "say what to do: 'voxflow livekit setup', 'voxflow livekit build' or 'voxflow livekit testbed'."
        )
    setup = setup_from_env(
        dict(os.environ),
        trunk_name=args.trunk_name,
        rule_name=args.rule_name,
        agent_name=args.agent_name,
        room_prefix=args.room_prefix,
        allowed_addresses=as_tuple(args.allowed_address),
        numbers=as_tuple(args.number),
    )
    report = asyncio.run(set_up_livekit(setup))
    for action in report.actions:
        print(action)
    print(f"LiveKit is ready for voxflow: trunk {report.trunk_id}, dispatch rule {report.rule_id}.")
    return 0
