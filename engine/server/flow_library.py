"""The flows and triggers a running server serves, reloaded as their files change.

Hot reload rules (what a developer editing flows/ expects):

- a valid change serves new calls at once; calls in progress keep the graph
  they started with (they hold their own FlowGraph, so nothing here touches them);
- an invalid change keeps the previous version live and reports the errors;
- a deleted file stops taking new calls for the flows and triggers it held.

The library re-checks the whole folder on each change (flows refer to each
other through subflows and triggers, so one file's validity can depend on
another's); for folders of a few hundred files this takes milliseconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine.core.errors import Diagnostic
from engine.language.compile import FlowGraph
from engine.language.project import YAML_SUFFIXES, check_paths, internal_problem
from engine.language.registry import PluginRegistry, default_registry
from engine.language.triggers import Trigger

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReloadReport:
    """What one reload changed, for the terminal and the monitor page."""

    started: float
    finished: float
    added: tuple[str, ...] = ()  # flow ids served for the first time
    updated: tuple[str, ...] = ()  # flow ids now served at a new version
    removed: tuple[str, ...] = ()  # flow ids no longer served (file deleted)
    kept: tuple[str, ...] = ()  # flow ids whose file is broken: previous version kept
    diagnostics: tuple[Diagnostic, ...] = ()

    @property
    def seconds(self) -> float:
        return self.finished - self.started

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    def summary(self) -> str:
        parts = []
        for label, names in (
            ("new", self.added),
            ("updated", self.updated),
            ("removed", self.removed),
            ("kept previous version of", self.kept),
        ):
            if names:
                parts.append(f"{label}: {', '.join(names)}")
        errors = len(self.errors)
        if errors:
            parts.append(f"{errors} error{'s' if errors != 1 else ''}")
        return "; ".join(parts) or "no change"


@dataclass
class FlowLibrary:
    """The live set of compiled flows and triggers under one folder."""

    root: Path
    registry: PluginRegistry = field(default_factory=default_registry)
    flows: dict[str, FlowGraph] = field(default_factory=dict)
    triggers: dict[str, Trigger] = field(default_factory=dict)  # by phone number
    problems: dict[str, list[Diagnostic]] = field(default_factory=dict)  # by file
    _flow_file: dict[str, str] = field(default_factory=dict)  # flow id → file it came from
    _trigger_file: dict[str, str] = field(default_factory=dict)  # number → file

    def flow(self, flow_id: str) -> FlowGraph | None:
        return self.flows.get(flow_id)

    def trigger_for(self, number: str) -> Trigger | None:
        return self.triggers.get(number)

    def reload(self) -> ReloadReport:
        """Re-check every file under ``root`` and update what is served; never raises.

        A file no check foresaw is reported against that file (check_paths);
        should the reload itself fail, everything served stays as it was and
        the failure is reported, so one hostile file can never stop the server
        from serving the others, nor the watcher from watching.
        """
        started = time.perf_counter()
        try:
            return self._reload(started)
        except (Exception, RecursionError) as error:
            log.exception("reloading %s failed", self.root)
            problem = internal_problem(str(self.root), error)
            return ReloadReport(
                started=started,
                finished=time.perf_counter(),
                added=(),
                updated=(),
                removed=(),
                kept=tuple(self.flows),
                diagnostics=(problem,),
            )

    def _reload(self, started: float) -> ReloadReport:
        result = check_paths([self.root], self.registry) if self.root.exists() else None
        diagnostics = list(result.diagnostics) if result else []
        present = {str(p) for p in self.root.rglob("*") if p.suffix in YAML_SUFFIXES}
        broken_files = {d.file for d in diagnostics if d.is_error}

        added, updated, removed, kept = [], [], [], []
        new_flows: dict[str, FlowGraph] = {}
        new_flow_file: dict[str, str] = {}
        compiled = result.flows if result else {}
        for flow_id, graph in compiled.items():
            new_flows[flow_id] = graph
            new_flow_file[flow_id] = graph.source
            previous = self.flows.get(flow_id)
            if previous is None:
                added.append(flow_id)
            elif previous.version != graph.version:
                updated.append(flow_id)
        for flow_id, previous in self.flows.items():
            if flow_id in new_flows:
                continue
            file = self._flow_file[flow_id]
            still_declared = result is not None and result.flow_files.get(flow_id) == file
            if file in present and (file in broken_files or still_declared):
                # Still there but not valid now (or its subflow is not): keep serving
                # the last good version until it is fixed.
                new_flows[flow_id] = previous
                new_flow_file[flow_id] = file
                kept.append(flow_id)
            else:
                removed.append(flow_id)

        new_triggers: dict[str, Trigger] = {t.number: t for t in (result.triggers if result else [])}
        for number, trigger in self.triggers.items():
            file = self._trigger_file[number]
            if number not in new_triggers and file in present and file in broken_files:
                new_triggers[number] = trigger  # broken trigger file: keep the last good one
        self.flows, self._flow_file = new_flows, new_flow_file
        self.triggers = new_triggers
        self._trigger_file = {number: t.source for number, t in new_triggers.items()}
        self.problems = {}
        for diagnostic in diagnostics:
            self.problems.setdefault(diagnostic.file, []).append(diagnostic)
        return ReloadReport(
            started=started,
            finished=time.perf_counter(),
            added=tuple(added),
            updated=tuple(updated),
            removed=tuple(removed),
            kept=tuple(kept),
            diagnostics=tuple(diagnostics),
        )

    async def watch(
        self,
        on_reload: Callable[[ReloadReport], Awaitable[None] | None] | None = None,
        stop: asyncio.Event | None = None,
        debounce_ms: int = 30,
    ) -> None:
        """Reload whenever a YAML file under ``root`` changes, until ``stop`` is set.

        watchfiles' default debounce (1.6 s) is far too slow for "save and call
        again"; editors write a file in one go, so a short debounce is safe.
        """
        import watchfiles

        def is_yaml(change: watchfiles.Change, path: str) -> bool:
            return path.endswith(YAML_SUFFIXES)

        async for _changes in watchfiles.awatch(
            self.root,
            watch_filter=is_yaml,
            debounce=debounce_ms,
            step=10,
            stop_event=stop,
            force_polling=None,
        ):
            report = self.reload()
            log.info("flows reloaded in %.0f ms: %s", report.seconds * 1000, report.summary())
            if on_reload is None:
                continue
            try:
                outcome = on_reload(report)
                if asyncio.iscoroutine(outcome):
                    await outcome
            except Exception:  # reporting a reload must not end the watching
                log.exception("reporting the reload of %s failed", self.root)
