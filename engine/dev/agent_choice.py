"""The voice agent of ``voxflow dev``: which one runs, and how it is started and stopped.

- With ``LIVEKIT_URL`` set: ``voxflow agent`` as a child process, which joins
  calls through LiveKit rooms exactly as in production (it needs the embedded
  Redis bus, not ``--memory-bus``).
- Otherwise: :class:`~engine.agent.dev_agents.DevAgents` in this process, one
  agent per call the server takes, on the offline engines unless
  ``VOXFLOW_STT`` / ``VOXFLOW_TTS`` choose cloud ones; it also takes the monitor
  page's browser callers (engine.server.caller_socket).
- ``--no-agent``: none (calls then wait for a ``voxflow agent`` started by hand).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.core.errors import VoxflowError
from engine.server import events as ev
from engine.server.api import call_context_of
from engine.server.context import ServerContext

if TYPE_CHECKING:
    from engine.dev.stack import DevOptions

DISCOVERY_FILE = "dev.json"


def check_engines(options: DevOptions) -> None:
    """Before anything starts: the in-process agent's speech engines have what they need."""
    if not options.agent:
        return
    from engine.agent import turn_model_file

    turn_model = turn_model_file.problems(default="auto")
    if turn_model:
        raise VoxflowError(f"the voice agent cannot start: {turn_model[0]}")
    if os.environ.get("LIVEKIT_URL", "").strip():
        return
    from engine.agent import engines

    try:
        choice = engines.choose()
    except VoxflowError as error:
        raise VoxflowError(f"the voice agent cannot start: {error}") from None
    missing = engines.problems(choice)
    if missing:
        raise VoxflowError(
            f"the voice agent cannot use the speech engines chosen (speech recognition "
            f"{choice.stt}, speech synthesis {choice.tts}): it needs {'; '.join(missing)}. "
            "Set what is missing, choose the offline engines (unset VOXFLOW_STT and "
            "VOXFLOW_TTS), or run with --no-agent."
        )


async def start(
    options: DevOptions,
    stack: contextlib.AsyncExitStack,
    ctx: ServerContext,
    url: str,
    bus: Any,
    redis_url: str | None,
) -> str:
    """Start the agent ``options`` ask for; stopped by ``stack``. Returns a line for the terminal."""
    if not options.agent:
        return "none (--no-agent): start 'voxflow agent' to answer calls"
    if os.environ.get("LIVEKIT_URL", "").strip():
        return _start_livekit_agent(options, stack, ctx, url, redis_url)
    from engine.agent import prompt_cache
    from engine.agent.dev_agents import DevAgents

    try:
        cache = prompt_cache.PromptCache(
            prompt_cache.store_from_env(default_dir=(options.state_dir / "prompt-cache").resolve())
        )
        agents = DevAgents(
            bus,
            recordings_dir=(options.state_dir / "recordings").resolve(),
            call_language=lambda call_id: _language_of(ctx, call_id),
            recording_saved=lambda call_id, _: _recording_saved(ctx, url, call_id),
            cache=cache,
        )
    except VoxflowError as error:
        raise VoxflowError(f"the voice agent cannot start: {error}") from None
    await agents.prewarm()
    stack.push_async_callback(agents.aclose)
    ctx.metrics.registry.register(prompt_cache.PromptCacheCollector(cache))
    preparing: set[asyncio.Task[int]] = set()

    def prepare() -> None:
        # Every fixed prompt of the loaded flow versions, synthesised before a call needs it.
        task = asyncio.ensure_future(agents.prepare_prompts(list(ctx.library.flows.values())))
        preparing.add(task)
        task.add_done_callback(preparing.discard)

    prepare()
    stack.callback(lambda: [task.cancel() for task in list(preparing)])

    def follow(event: ev.LiveEvent) -> None:
        if event.type == ev.FLOWS_RELOADED:
            prepare()
        if event.call_id is None:
            return
        if event.type == ev.CALL_INCOMING:
            agents.call_started(event.call_id)
        elif event.type == ev.CALL_ENDED:
            agents.call_ended(event.call_id)

    ctx.hub.listen(follow)
    ctx.agents = agents
    return f"in this process ({agents.describe()}); call a flow from the monitor page"


def _start_livekit_agent(
    options: DevOptions, stack: contextlib.AsyncExitStack, ctx: ServerContext, url: str, redis_url: str | None
) -> str:
    if redis_url is None:
        return (
            "none: the LiveKit agent needs the Redis voice bus; run without --memory-bus "
            "(calls through LiveKit wait for an agent)"
        )
    env = {
        **os.environ,
        "VOXFLOW_REDIS_URL": redis_url,
        "VOXFLOW_SERVER_URL": url,
        "VOXFLOW_INTERNAL_TOKEN": ctx.settings.internal_token or "",
        # As dev's own agent: the Smart Turn model when it has been fetched.
        "VOXFLOW_TURN_MODEL": os.environ.get("VOXFLOW_TURN_MODEL", "").strip() or "auto",
    }
    log = open(options.state_dir / "agent.log", "ab")  # noqa: SIM115 - closed with the stack
    process = subprocess.Popen(
        [sys.executable, "-m", "engine.cli.main", "agent"], env=env, stdout=log, stderr=subprocess.STDOUT
    )

    def stop() -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()

    stack.callback(stop)
    return (
        f"'voxflow agent' joining LiveKit at {os.environ['LIVEKIT_URL']} "
        f"(pid {process.pid}, log {options.state_dir / 'agent.log'})"
    )


async def _language_of(ctx: ServerContext, call_id: str) -> tuple[str | None, str | None]:
    """The language and voice a call is spoken in, as a LiveKit agent is told them."""
    record = await ctx.records.get_call(call_id)
    if record is None:
        return None, None
    context = call_context_of(ctx, record)
    return context["language"], context["voice"]


async def _recording_saved(ctx: ServerContext, url: str, call_id: str) -> None:
    await ctx.records.set_recording_url(call_id, f"{url}/api/recordings/{call_id}.wav")


def write_discovery(
    state_dir: Path, url: str, token: str | None, stack: contextlib.ExitStack | contextlib.AsyncExitStack
) -> None:
    """Where the running server is, for ``voxflow chat`` (readable by this user only)."""
    path = state_dir / DISCOVERY_FILE
    path.write_text(json.dumps({"url": url, "token": token, "pid": os.getpid()}))
    path.chmod(0o600)
    stack.callback(lambda: path.unlink(missing_ok=True))


def find_running(state_dir: Path = Path(".voxflow")) -> tuple[str, str | None] | None:
    """The URL and token of a ``voxflow dev`` running from this folder and answering, if any."""
    import urllib.request

    path = state_dir / DISCOVERY_FILE
    try:
        found = json.loads(path.read_text())
        os.kill(int(found["pid"]), 0)  # still running? (a stale file is left by a kill -9)
        url = str(found["url"])
        with urllib.request.urlopen(f"{url}/healthz", timeout=1.0):
            pass
        return url, found.get("token")
    except (OSError, ValueError, KeyError, TypeError):
        return None
