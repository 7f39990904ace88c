"""Hot reload of flows/ for a running server: the terminal, the monitor page and the metrics hear of it.

The :class:`~engine.server.flow_library.FlowLibrary` does the work (a valid change
is served at once, an invalid one keeps the previous version, a deleted file
stops taking calls); this module reports each reload: a line in the terminal
with the errors under it (as ``voxflow validate`` prints them), a
``flows:reloaded`` event for the monitor page, the error gauge for Prometheus.
Calls in progress are untouched: each holds the graph it started with.
"""

from __future__ import annotations

import asyncio
import io
import sys
from typing import TextIO

from engine.core.output import print_diagnostics
from engine.server import events as ev
from engine.server.context import ServerContext
from engine.server.flow_library import ReloadReport


def report_reload(ctx: ServerContext, report: ReloadReport, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    ctx.last_reload = report
    errors = report.errors
    ctx.metrics.reload_errors.set(len({d.file for d in errors}))
    print(f"flows reloaded in {report.seconds * 1000:.0f} ms: {report.summary()}", file=out, flush=True)
    if errors:
        buffer = io.StringIO()
        print_diagnostics(errors, buffer)
        print(buffer.getvalue().rstrip(), file=out, flush=True)
        if report.kept:
            print(f"still serving the previous version of: {', '.join(report.kept)}", file=out, flush=True)
    ctx.hub.deliver(
        ev.LiveEvent(
            ev.FLOWS_RELOADED,
            data={
                "summary": report.summary(),
                "added": list(report.added),
                "updated": list(report.updated),
                "removed": list(report.removed),
                "kept": list(report.kept),
                "errors": [d.to_json() | {"text": d.one_line()} for d in errors],
                "versions": {flow_id: g.short_version for flow_id, g in ctx.library.flows.items()},
            },
        )
    )


async def watch_flows(
    ctx: ServerContext, stop: asyncio.Event, out: TextIO | None = None, debounce_ms: int = 30
) -> None:
    """Reload on every change under the flows folder until ``stop`` is set."""
    await ctx.library.watch(
        lambda report: report_reload(ctx, report, out), stop=stop, debounce_ms=debounce_ms
    )
