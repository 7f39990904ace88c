"""``voxflow serve``: the telephony server for production.

Telnyx and LiveKit webhooks, the JSON API, live events (SSE / WebSocket),
Prometheus metrics and the monitor page, with hot reload of the flows folder.
It needs a Temporal server (``TEMPORAL_ADDRESS``) and, to share live events
between replicas and tell calls that their agent left (LiveKit's webhook),
Redis (``VOXFLOW_REDIS_URL``, also the voice bus); calls run on ``voxflow
worker`` processes. Configuration is in environment variables (engine.server.settings).
Stops cleanly on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from dataclasses import replace
from pathlib import Path

from engine.core.errors import VoxflowError
from engine.runtime.temporal_server import connect_client, temporal_settings_from_env
from engine.server.settings import ServerSettings, settings_from_env
from engine.server.stack import ServerStack, StackOptions

HELP = "Run the telephony server: Telnyx webhooks, API, live events, monitor page."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    parser.add_argument(
        "--flows", metavar="FOLDER", help="the folder of flows and triggers (default $VOXFLOW_FLOWS or flows)"
    )
    parser.add_argument("--no-reload", action="store_true", help="do not watch the flows folder for changes")
    parser.add_argument(
        "--no-auth",
        action="store_true",
        help="serve the API without VOXFLOW_API_TOKEN (only behind your own authentication)",
    )


def run(args: argparse.Namespace) -> int:
    settings = settings_from_env()
    if args.flows:
        settings = replace(settings, flows_dir=Path(args.flows))
    check(settings, no_auth=args.no_auth)
    temporal = temporal_settings_from_env()
    if temporal.address is None:
        raise VoxflowError(
            "set TEMPORAL_ADDRESS (host:port of your Temporal server); "
            "'voxflow dev' runs one on this machine for development."
        )
    options = StackOptions(host=args.host, port=args.port, watch=not args.no_reload)
    return asyncio.run(_serve(settings, options, temporal))


def check(settings: ServerSettings, *, no_auth: bool) -> None:
    if not settings.flows_dir.is_dir():
        raise VoxflowError(
            f"{settings.flows_dir}: no such folder of flows (set VOXFLOW_FLOWS or use --flows)."
        )
    if settings.api_token is None and not no_auth:
        raise VoxflowError(
            "set VOXFLOW_API_TOKEN: the API, the live events and the monitor "
            "page show callers' numbers and words. (--no-auth serves them "
            "without a token, for a server behind your own authentication.)"
        )
    if settings.telnyx_key is None:
        print("warning: TELNYX_PUBLIC_KEY is not set, so every Telnyx webhook will be refused.", flush=True)
    if settings.livekit_api_key is None or settings.livekit_api_secret is None:
        print(
            "warning: LIVEKIT_API_KEY and LIVEKIT_API_SECRET are not both set, so LiveKit's "
            "webhooks will be refused (a voice agent that dies mid-call is then noticed "
            "only by the call's own timeouts).",
            flush=True,
        )
    if settings.redis_url is None:
        print(
            "note: VOXFLOW_REDIS_URL is not set: live events from workers in other processes "
            "will not reach this server, nor LiveKit's word that an agent left a call "
            "reach the call.",
            flush=True,
        )


async def _serve(settings: ServerSettings, options: StackOptions, temporal) -> int:  # type: ignore[no-untyped-def]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stop.set)
    client = await connect_client(temporal)
    bus = None
    if settings.redis_url and options.voice_bus is None:
        # The calls' voice bus: where LiveKit's webhooks tell a call its agent left.
        from engine.voice.redis_bus import RedisVoiceBus

        bus = RedisVoiceBus.from_url(settings.redis_url)
        options = replace(options, voice_bus=bus)
    try:
        async with ServerStack(settings, client, options) as stack:
            print(
                f"voxflow server listening on {stack.url} (Temporal {temporal.address}, task "
                f"queue '{settings.task_queue}'); monitor page at {stack.url}/monitor/. "
                "Stop with Ctrl-C.",
                flush=True,
            )
            await stop.wait()
    finally:
        if bus is not None:
            await bus.close()
    print("voxflow server stopped.", flush=True)
    return 0
