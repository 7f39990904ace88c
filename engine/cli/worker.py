"""``voxflow worker [--embedded]``: run the Temporal worker that runs calls.

It polls the task queue ``voxflow`` for CallFlowWorkflow steps and ``run_node``
activities. With ``--embedded`` it first starts the Temporal dev server on
this machine (state kept in ``--db-file``); otherwise it connects to
``TEMPORAL_ADDRESS`` (plus ``TEMPORAL_NAMESPACE`` and the TLS / API key
variables). Database connections and the LLM endpoint come from the
environment or voxflow.yaml (see engine.runtime.config). Stops cleanly on
Ctrl-C or SIGTERM, letting running activities finish for a few seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import signal
import sys
from pathlib import Path

from engine.core.errors import VoxflowError
from engine.runtime.config import load_runtime_config
from engine.runtime.messages import TASK_QUEUE
from engine.runtime.services import RuntimeServices
from engine.runtime.temporal_server import (
    EmbeddedTemporal,
    TemporalSettings,
    connect_client,
    temporal_settings_from_env,
)
from engine.runtime.worker import WorkerOptions, run_worker

HELP = "Run the worker that runs calls (Temporal workflows and node activities)."
DEFAULT_DB_FILE = Path(".voxflow") / "temporal.db"
SETTLE_SECONDS = 0.3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--embedded",
        action="store_true",
        help="start the Temporal dev server on this machine instead of connecting to TEMPORAL_ADDRESS",
    )
    parser.add_argument(
        "--db-file",
        default=str(DEFAULT_DB_FILE),
        metavar="PATH",
        help=f"with --embedded: where the server keeps its state (default {DEFAULT_DB_FILE})",
    )
    parser.add_argument(
        "--task-queue",
        default=TASK_QUEUE,
        metavar="NAME",
        help=f"the Temporal task queue to poll (default {TASK_QUEUE})",
    )
    parser.add_argument(
        "--config", metavar="FILE", help="a voxflow.yaml with database connections and the LLM endpoint"
    )
    parser.add_argument(
        "--sticky-timeout",
        type=_seconds,
        default=10.0,
        metavar="SECONDS",
        help="how long Temporal waits for this worker before giving a "
        "call's next step to another worker (default 10)",
    )
    parser.add_argument(
        "--heartbeat-throttle",
        type=_seconds,
        default=1.0,
        metavar="SECONDS",
        help="the longest a hangup takes to reach a running node (default 1)",
    )


def run(args: argparse.Namespace) -> int:
    config = load_runtime_config(config_file=args.config)
    options = WorkerOptions(
        task_queue=args.task_queue,
        sticky_timeout=args.sticky_timeout,
        heartbeat_throttle=args.heartbeat_throttle,
    )
    settings = temporal_settings_from_env()
    if not args.embedded and settings.address is None:
        raise VoxflowError(
            "no Temporal server to connect to: set TEMPORAL_ADDRESS=host:port, or run "
            "'voxflow worker --embedded' to start one on this machine."
        )
    return asyncio.run(_serve(args, settings, RuntimeServices(config), options, config.source))


async def _serve(
    args: argparse.Namespace,
    settings: TemporalSettings,
    services: RuntimeServices,
    options: WorkerOptions,
    config_source: str,
) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stop.set)
    server: EmbeddedTemporal | None = None
    try:
        if args.embedded:
            server = EmbeddedTemporal(db_file=args.db_file)
            await server.start_async()
            settings = server.settings()
            _say(f"Temporal dev server at {server.address} (state in {args.db_file})")
        client = await connect_client(settings)
        # Voice bus, call records and live events as the environment says (engine.server).
        from engine.server.worker_setup import attach_from_env, describe

        closers = await attach_from_env(services)
        _say(f"voxflow worker: {describe()}")
        ready = asyncio.Event()
        worker = asyncio.create_task(run_worker(client, services, options, stop, ready))
        started = asyncio.create_task(ready.wait())
        await asyncio.wait({worker, started}, return_when=asyncio.FIRST_COMPLETED)
        started.cancel()
        if ready.is_set():
            _say(
                f"voxflow worker ready: task queue '{options.task_queue}' on {settings.address} "
                f"(namespace {settings.namespace}); configuration from {config_source}. "
                "Stop with Ctrl-C."
            )
        await worker
        for close in closers:
            await close()
        del client, worker
        await _let_native_threads_settle()
        _say("voxflow worker stopped.")
        return 0
    finally:
        if server is not None:
            await server.stop_async()


async def _let_native_threads_settle() -> None:
    """Give the Temporal SDK's native threads their last callbacks while the loop still runs.

    Otherwise one of them may call into Python during interpreter teardown and
    abort the process (SIGABRT, "PyGILState_Release: thread state must be
    current"; temporalio/sdk-python#300) after a perfectly clean stop: seen
    here in about one stop in eight, and in none of 60 with this pause.
    """
    gc.collect()  # drop the client's native handles now, not during teardown
    await asyncio.sleep(SETTLE_SECONDS)


def _say(text: str) -> None:
    print(text, flush=True)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("give a number of seconds above 0")
    return value


if __name__ == "__main__":  # pragma: no cover - `voxflow worker` is the entry point
    from engine.cli.main import main

    sys.exit(main(["worker", *sys.argv[1:]]))
