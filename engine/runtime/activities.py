"""``run_node``: the one activity that runs every I/O node through its plugin.

The workflow sends the node (type and raw config) and the call's variables;
this activity looks the plugin up in the registry, fills in the config's
``${...}`` templates, and awaits the plugin's ``execute`` while heartbeating,
so that a hangup (activity cancellation) reaches it within a second and a
dead worker is noticed within the heartbeat timeout.

For recorded calls (``task.record``; see engine.runtime.recording) it also
tells the worker's :class:`~engine.runtime.recording.CallRecorder` which node
the call entered and how it went, and lends the plugin a voice bus that notes
the transcript; ``record_call_started`` / ``record_call_ended`` are the
call's first and last writes. Without a recorder they do nothing.

Failures become Temporal ``ApplicationError`` s with plain messages. Whether
Temporal may retry is decided here, from the attempt number and the flow
author's ``retry.max_attempts``: the workflow's retry policy allows a couple of
attempts more than that, so that attempts lost with a killed worker (heartbeat
timeouts) are retried even on nodes the author did not ask to retry.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from engine.core import telemetry
from engine.core.errors import VoxflowError
from engine.language.node_contract import NodeContext, NodeResult
from engine.language.registry import PluginRegistry, default_registry, talks_to_caller
from engine.language.templates import (
    TemplateProblem,
    missing_variables,
    render,
    render_url,
    render_value,
)
from engine.runtime.messages import (
    RUN_NODE_ACTIVITY,
    NodeOutcome,
    NodeTask,
    from_flat_data,
    missing_message,
)
from engine.runtime.recording import (
    RECORD_CALL_ENDED,
    RECORD_CALL_STARTED,
    RECORD_NODE_REACHED,
    CallClosed,
    CallOpened,
    CallRecorder,
    NodeEntered,
    NodeReached,
)
from engine.runtime.services import RuntimeServices

# Config fields read by the engine, not by the plugin: never rendered as templates.
ENGINE_FIELDS = frozenset({"timeout", "retry", "on_error", "max_visits", "description", "save_as"})
log = logging.getLogger(__name__)
# Error types, visible in the Temporal UI and in the workflow.
NOT_RUNNABLE = "NodeNotRunnable"
CONFIG_ERROR = "NodeConfigError"
NODE_TIMEOUT = "NodeTimeout"
NODE_FAILED = "NodeFailed"
# Longest gap between two heartbeats we record (the SDK batches them further). A hangup
# cancels a running node through Temporal, which tells the node on its next heartbeat.
MAX_HEARTBEAT_GAP = 1.0
# Heartbeats per heartbeat timeout for a node that hears a hangup itself (HEARS_HANGUP):
# enough that one lost heartbeat does not look like a dead worker. Every waiting caller
# costs the Temporal server a write per heartbeat, so 200 calls at one a second were
# 200 writes a second (bench/bench_voice.py).
QUIET_HEARTBEATS_PER_TIMEOUT = 3


class _TimedOut(Exception):
    """The node ran past its own time limit (not a timeout raised by the plugin)."""


class NodeActivities:
    """Holds the registry and services; ``run_node`` is the registered activity."""

    def __init__(self, services: RuntimeServices, registry: PluginRegistry | None = None) -> None:
        self.services = services
        self.registry = registry or default_registry()
        self.recorder: CallRecorder | None = getattr(services, "recorder", None)

    def record_activities(self) -> list[Any]:
        """The call record's activities, registered on every worker (no-ops without a recorder)."""
        return [self.record_call_started, self.record_node_reached, self.record_call_ended]

    @activity.defn(name=RECORD_CALL_STARTED)
    async def record_call_started(self, opened: CallOpened) -> None:
        if self.recorder is not None:
            await self.recorder.call_started(opened)

    @activity.defn(name=RECORD_NODE_REACHED)
    async def record_node_reached(self, reached: NodeReached) -> None:
        if self.recorder is not None:
            await self.recorder.node_entered(
                NodeEntered(
                    call_id=reached.call_id,
                    root_flow_id=reached.root_flow_id,
                    flow_id=reached.flow_id,
                    node_id=reached.node_id,
                    node_type=reached.node_type,
                    walked=tuple(reached.walked),
                    variables=reached.variables,
                )
            )

    @activity.defn(name=RECORD_CALL_ENDED)
    async def record_call_ended(self, closed: CallClosed) -> None:
        if self.recorder is not None:
            await self.recorder.call_ended(closed)

    @activity.defn(name=RUN_NODE_ACTIVITY)
    async def run_node(self, data: dict[str, Any]) -> NodeOutcome:
        # The NodeTask arrives as a dict and is rebuilt here rather than by
        # temporalio (see messages.from_flat_data: its dataclass decoding costs
        # ~0.25 ms per node). The payload is the same JSON either way.
        task = from_flat_data(NodeTask, data)
        if not telemetry.enabled():
            return await self._run_task(task)
        with telemetry.span(
            f"node {task.node_id}",
            {
                "voxflow.node_id": task.node_id,
                "voxflow.node_type": task.node_type,
                "voxflow.flow_id": task.flow_id,
            },
            call_id=task.call_id,
        ):
            return await self._run_task(task)

    async def _run_task(self, task: NodeTask) -> NodeOutcome:
        recorder = self.recorder if task.record else None
        if recorder is None:
            return await self._run_node(task, self.services)
        entered = NodeEntered(
            call_id=task.call_id,
            root_flow_id=str(task.call.get("flow_id") or task.flow_id),
            flow_id=task.flow_id,
            node_id=task.node_id,
            node_type=task.node_type,
            walked=tuple(task.walked),
            variables=task.variables,
            run_key=f"{activity.info().workflow_id}/{activity.info().activity_id}",
        )
        # Noted before the node runs, so the monitor lights the node the caller is in.
        await recorder.node_entered(entered)
        services = _NodeServices(
            self.services,
            voice_bus=recorder.watch_voice_bus(
                getattr(self.services, "voice_bus", None), task.call_id, entered.root_flow_id
            ),
        )
        began = time.monotonic()
        # What an outside service answered (any node that calls one, a third party's too),
        # kept on the record so the call can be replayed as a test.
        outside = not talks_to_caller(task.node_type, self.registry) and not task.node_id.startswith("~")
        try:
            outcome = await self._run_node(task, services)
        except ApplicationError as error:
            await recorder.node_finished(
                entered,
                time.monotonic() - began,
                error.message,
                _answers(services.voice_bus),
                {"error": error.message} if outside else None,
            )
            raise
        await recorder.node_finished(
            entered,
            time.monotonic() - began,
            None,
            _answers(services.voice_bus),
            {"exit": outcome.exit, "outputs": outcome.outputs} if outside else None,
        )
        return outcome

    async def _run_node(self, task: NodeTask, services: Any) -> NodeOutcome:
        info = activity.info()
        label = f"the node '{task.node_id}' ({task.node_type})"
        try:
            node_type = self.registry.get(task.node_type)
        except VoxflowError as error:
            raise ApplicationError(
                f"{label} cannot run on this worker: {error.message}. Install the package that "
                "provides it on every worker.",
                type=CONFIG_ERROR,
                non_retryable=True,
            ) from None
        try:
            with missing_variables() as missing:
                config = (
                    task.config
                    if task.rendered
                    else render_config(task.config, task.variables, special_fields(node_type))
                )
        except TemplateProblem as problem:
            raise ApplicationError(f"{label}: {problem}", type=CONFIG_ERROR, non_retryable=True) from None
        if missing and info.attempt == 1:
            await self._warn_missing(task, missing)
        if task.upcoming:
            upcoming = render_upcoming(task.upcoming, task.variables)
            if upcoming:
                services = _NodeServices(services, upcoming_prompts=upcoming)
        context = NodeContext(task.call_id, task.node_id, task.variables, task.call)
        work = asyncio.ensure_future(self._execute(node_type.module, task, config, context, services))
        last_try = info.attempt >= task.max_attempts
        try:
            gap = heartbeat_gap(info.heartbeat_timeout, node_type.hears_hangup)
            result = await _await_with_heartbeats(work, task.timeout, gap)
        except _TimedOut:
            raise ApplicationError(
                f"{label} took longer than its time limit of {_seconds(task.timeout)}.",
                type=NODE_TIMEOUT,
                non_retryable=last_try,
            ) from None
        except NotImplementedError as error:
            text = str(error).removeprefix(f"the {task.node_type} node ")
            raise ApplicationError(f"{label} {text}", type=NOT_RUNNABLE, non_retryable=True) from None
        except VoxflowError as error:
            # A configuration problem (unknown connection, missing key): retrying cannot help.
            raise ApplicationError(
                f"{label}: {error.message}", type=CONFIG_ERROR, non_retryable=True
            ) from None
        except Exception as error:  # the plugin's own failure, worded by the plugin
            raise ApplicationError(
                f"{label} failed: {_describe(error)}", type=NODE_FAILED, non_retryable=last_try
            ) from None
        outcome = to_outcome(result, label)
        outcome.missing = list(missing)
        return outcome

    async def _warn_missing(self, task: NodeTask, names: list[str]) -> None:
        """Tell the author: the worker's log, and (recorded calls) the monitor and /metrics."""
        message = missing_message(task.flow_id, task.node_id, names, task.call_id)
        log.warning("%s", message)
        recorder = self.recorder if task.record else None
        if recorder is not None and hasattr(recorder, "variables_missing"):
            root = str(task.call.get("flow_id") or task.flow_id)
            await recorder.variables_missing(task.call_id, root, task.flow_id, task.node_id, names, message)

    async def _execute(
        self,
        plugin: Any,
        task: NodeTask,
        config: dict[str, Any],
        context: NodeContext,
        services: Any,
    ) -> NodeResult:
        """The plugin's work, or the worker's fixed answer for this node (tests, chat)."""
        fixed = self.services.fixed_answers
        answer = fixed.answer(task, config) if fixed is not None else None
        if answer is not None:
            return answer
        result: NodeResult = await plugin.execute(config, context, services)
        return result


class _NodeServices:
    """The worker's services as one node is lent them: the voice bus of a recorded call
    swapped for a watched one, what the call may say after the node (``upcoming_prompts``)."""

    def __init__(self, services: Any, **lent: Any) -> None:
        self._services = services
        for name, value in lent.items():
            setattr(self, name, value)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._services, name)


def _answers(voice_bus: Any) -> dict[str, Any] | None:
    """How the node's questions went, as the watched voice bus counted them (if it asked)."""
    answers = getattr(voice_bus, "answers", None)
    return dict(answers) if answers else None


def heartbeat_gap(heartbeat_timeout: timedelta | None, hears_hangup: bool) -> float:
    """Seconds between a node's heartbeats.

    Every second at most, so a hangup's cancellation reaches the node soon; for a node
    that hears the hangup on the voice bus, only as often as the heartbeat timeout
    (noticing a dead worker) needs.
    """
    if heartbeat_timeout is None:
        return MAX_HEARTBEAT_GAP
    timeout = heartbeat_timeout.total_seconds()
    gap = min(MAX_HEARTBEAT_GAP, max(timeout / 4, 0.05))
    if hears_hangup:
        gap = max(gap, timeout / QUIET_HEARTBEATS_PER_TIMEOUT)
    return gap


async def _await_with_heartbeats(
    work: asyncio.Future[NodeResult], limit: float | None, gap: float
) -> NodeResult:
    """Await the plugin, heartbeating every ``gap`` seconds; cancel it on timeout or cancellation."""
    deadline = None if limit is None else time.monotonic() + limit
    try:
        while True:
            wait = gap if deadline is None else min(gap, deadline - time.monotonic())
            if wait <= 0:
                raise _TimedOut()
            done, _ = await asyncio.wait({work}, timeout=wait)
            if done:
                return work.result()
            activity.heartbeat()
    except BaseException:
        # Cancelled (hangup, worker shutdown) or timed out: stop the plugin too.
        if not work.done():
            work.cancel()
            try:
                await work
            except BaseException:  # noqa: S110 - its outcome no longer matters
                pass
        raise


def render_config(
    config: Mapping[str, Any],
    variables: Mapping[str, Any],
    special: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Fill in every template of a node's config, except the engine's own fields.

    ``special`` names the node type's fields that are not plain templates
    (:func:`special_fields`): ``raw_text`` is left exactly as written (SQL),
    ``url`` is filled in with each value percent-encoded and its host fixed.
    """
    special = special or {}
    rendered: dict[str, Any] = {}
    for key, value in config.items():
        kind = special.get(key)
        if key in ENGINE_FIELDS or kind == "raw_text":
            rendered[key] = value
        elif kind == "url" and isinstance(value, str):
            rendered[key] = render_url(value, variables)
        else:
            rendered[key] = _render_field(value, variables)
    return rendered


def _render_field(value: Any, variables: Mapping[str, Any]) -> Any:
    """A field that is a plain template (or holds some), filled in."""
    return _render_fixed(value) if _is_fixed_text(value) else render_value(value, variables)


def render_upcoming(texts: list[str], variables: Mapping[str, Any]) -> tuple[str, ...]:
    """What the call may say next (``NodeTask.upcoming``), filled in exactly as the node
    that says it will fill in its field (:func:`render_config`, then ``str``), so the
    prompt cache's key is the same. A text that reads a variable the call does not have
    yet, or cannot be filled in, is left out: these are only prepared, never said."""
    found: dict[str, None] = {}
    for text in texts:
        try:
            with missing_variables() as missing:
                value = _render_field(text, variables)
        except TemplateProblem:
            continue
        spoken = str(value)
        if not missing and spoken.strip():
            found.setdefault(spoken, None)
    return tuple(found)


_SPECIAL_REFS = {"#/$defs/raw_text": "raw_text", "#/$defs/url": "url"}


_SPECIAL_CACHE: dict[int, tuple[Any, dict[str, str]]] = {}


def special_fields(node_type: Any) -> dict[str, str]:
    """The node type's top-level fields built from RAW_TEXT or URL (engine.plugin_api)."""
    schema = node_type.schema
    cached = _SPECIAL_CACHE.get(id(schema))
    if cached is not None and cached[0] is schema:
        return cached[1]
    properties = schema.get("properties") or {}
    found = {
        field: _SPECIAL_REFS[spec["$ref"]]
        for field, spec in properties.items()
        if isinstance(spec, Mapping) and spec.get("$ref") in _SPECIAL_REFS
    }
    _SPECIAL_CACHE[id(schema)] = (schema, found)
    return found


def _is_fixed_text(value: Any) -> bool:
    # Text without "${" (and without the NUL that starts Jinja's moved-away
    # block syntax) renders the same whatever the variables are.
    return isinstance(value, str) and "${" not in value and "\x00" not in value


@functools.lru_cache(maxsize=4096)
def _render_fixed(text: str) -> str:
    """``render(text, ...)`` for text that uses no variable, worked out once per text.

    Why: most of a node's config is fixed text (type, connection, query, next),
    and a Jinja render costs ~15 us even then, on every node of every call.
    Rendering (not returning the text as is) keeps exactly what render does to
    such text: newlines normalised, over-long text refused.
    """
    return render(text, {})


def to_outcome(result: object, label: str) -> NodeOutcome:
    if not isinstance(result, NodeResult):
        raise ApplicationError(
            f"{label}: its plugin returned {type(result).__name__}, not a NodeResult.",
            type=NODE_FAILED,
            non_retryable=True,
        )
    try:
        # Round-trip through JSON so what reaches the workflow is plain data
        # (dates become text) and a value JSON cannot hold fails here, named.
        outputs = json.loads(json.dumps(dict(result.outputs), default=str))
        variables = json.loads(json.dumps(dict(result.variables), default=str))
    except (TypeError, ValueError) as error:
        raise ApplicationError(
            f"{label}: its result cannot be stored in the call's variables: {error}",
            type=NODE_FAILED,
            non_retryable=True,
        ) from None
    return NodeOutcome(exit=result.exit, outputs=outputs, variables=variables)


def _describe(error: BaseException) -> str:
    text = str(error).strip()
    return text if text else type(error).__name__


def _seconds(value: float | None) -> str:
    if value is None:
        return "(none)"
    return f"{value:g} seconds" if value != 1 else "1 second"
