"""What the runtime lends node plugins, as Protocols a plugin can type against.

A plugin receives one ``services`` object (see engine.plugin_api.Services) and
asks it for what it needs. Activity nodes get :class:`ActivityServices` (an
HTTP session, databases by connection name, the LLM endpoint); nodes that run
inside the workflow get :class:`WorkflowServices` (waiting for a signal,
running a subflow, saying something). :func:`activity_services` and
:func:`workflow_services` turn "this object lacks that" into a plain sentence
instead of an AttributeError.

This module is imported inside the workflow sandbox (through the plugins), so
it must stay free of I/O and heavy imports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

if TYPE_CHECKING:
    import aiohttp

    from engine.runtime.messages import SignalWait, SubflowOutcome


@dataclass(frozen=True)
class LlmSettings:
    """An OpenAI-compatible chat completions endpoint."""

    base_url: str
    model: str
    api_key: str | None = None


@dataclass(frozen=True)
class QueryResult:
    """Rows as column → value mappings, and how many rows were returned or changed."""

    rows: list[dict[str, Any]]
    row_count: int


class Database(Protocol):
    async def query(self, sql: str, params: Mapping[str, Any]) -> QueryResult:
        """Run one statement with ``:name`` placeholders bound to ``params``."""
        ...


class ActivityServices(Protocol):
    """Lent to nodes that run as activities (web APIs, models, databases, voice)."""

    async def http_session(self) -> aiohttp.ClientSession: ...

    def database(self, connection: str) -> Database: ...

    def llm(self) -> LlmSettings: ...


class WorkflowServices(Protocol):
    """Lent to nodes that run inside the workflow (waiting for a signal, calling a flow).

    Everything here is deterministic workflow code: timers, signals and child
    workflows recorded in the call's history.
    """

    async def receive_signal(self, name: str, timeout: float) -> SignalWait: ...

    async def run_subflow(self, flow_id: str, inputs: Mapping[str, Any]) -> SubflowOutcome: ...

    async def say(self, text: str) -> None: ...


def _check(services: object, names: Sequence[str], node_type: str) -> None:
    missing = [name for name in names if not hasattr(services, name)]
    if missing:
        raise RuntimeError(
            f"the {node_type} node needs the voxflow runtime ({', '.join(missing)}); "
            "it runs inside 'voxflow worker', not on its own."
        )


def activity_services(services: object, names: Sequence[str], node_type: str) -> ActivityServices:
    """``services`` as ActivityServices once it is known to have ``names``."""
    _check(services, names, node_type)
    return cast(ActivityServices, services)


def workflow_services(services: object, names: Sequence[str], node_type: str) -> WorkflowServices:
    """``services`` as WorkflowServices once it is known to have ``names``."""
    _check(services, names, node_type)
    return cast(WorkflowServices, services)
