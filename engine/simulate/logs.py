"""Keeping the Temporal SDK's log lines off the screen of ``voxflow chat`` and ``voxflow test``.

The SDK logs warnings when a node fails ("Completing activity as failed")
and its Rust core writes its own warnings straight to the terminal. Both
are useful when something is wrong with voxflow, and noise when a person
is trying a flow: while a command runs they go to a log file instead.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path

from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

LOGGERS = ("temporalio", "engine", "plugins", "aiohttp", "redis")
_core_logs_tried = False


def default_log_file(name: str) -> Path:
    return Path(tempfile.gettempdir()) / f"voxflow-{name}.log"


@contextlib.contextmanager
def logs_in_file(path: Path) -> Iterator[Path]:
    """Route the SDK's and voxflow's log records to ``path`` (appended) while the block runs."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    saved = []
    for name in LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.propagate, logger.level))
        logger.addHandler(handler)
        logger.propagate = False  # nothing reaches the terminal through the root logger
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)
    _forward_core_logs()
    try:
        yield path
    finally:
        for logger, propagate, level in saved:
            logger.removeHandler(handler)
            logger.propagate = propagate
            logger.setLevel(level)
        handler.close()


def send_logs_to_file(path: Path) -> Path:
    """Like :func:`logs_in_file`, for the rest of the process (benchmarks, worker processes)."""
    logs_in_file(path).__enter__()
    return path


def _forward_core_logs() -> None:
    """The Rust core's own lines through Python logging (so into the file), if still possible.

    The default runtime can only be chosen before the first Temporal client
    exists; in a process that already has one (a test session) it stays as it is.
    """
    global _core_logs_tried
    if _core_logs_tried:
        return
    _core_logs_tried = True
    runtime = Runtime(
        telemetry=TelemetryConfig(
            logging=LoggingConfig(
                filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
                forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
            )
        )
    )
    try:
        Runtime.set_default(runtime, error_if_already_set=True)
    except RuntimeError:
        pass
