"""The types a node and the engine share: what a node returns, what it is told,
and the building blocks of node schemas.

Node authors import these through :mod:`engine.plugin_api` (the whole public
surface); the engine imports them from here, so that the voice and runtime
modules it re-exports can use them without an import cycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

RunsIn = Literal["activity", "workflow"]

# Building blocks for node schemas. Each refers to a definition in the
# composed flow schema (schemas/flow.schema.json), which also gives editors
# their descriptions and autocompletion.
NODE_REF: dict[str, Any] = {"$ref": "#/$defs/node_ref"}
"""A field whose value is the id of another node: an exit."""
TEMPLATE: dict[str, Any] = {"$ref": "#/$defs/template"}
"""Text that may contain ``${...}`` placeholders."""
RAW_TEXT: dict[str, Any] = {"$ref": "#/$defs/raw_text"}
"""Text used exactly as written (SQL): the engine never fills it in; template syntax is refused."""
URL: dict[str, Any] = {"$ref": "#/$defs/url"}
"""An http(s) address: scheme and host written out; each ``${...}`` percent-encoded (``| raw``
inserts a value as it is); a value that would change the host is refused at run time."""
EXPRESSION: dict[str, Any] = {"$ref": "#/$defs/expression"}
"""A condition such as ``account.balance > 100`` (no ``${ }`` around it)."""
DURATION: dict[str, Any] = {"$ref": "#/$defs/duration"}
"""A length of time: ``500ms``, ``5s``, ``2m``, ``1h``, or a number of seconds."""
VARIABLE_NAME: dict[str, Any] = {"$ref": "#/$defs/variable_name"}
"""A name under which a result is saved (``save_as``)."""
EVENT_HANDLERS: dict[str, Any] = {"$ref": "#/$defs/event_handlers"}
"""Counted no_input / no_match handlers: reprompt first, then go somewhere."""
RETRY: dict[str, Any] = {"$ref": "#/$defs/retry"}
"""``{max_attempts, backoff}``; becomes a Temporal retry policy."""
PHONE_DESTINATION: dict[str, Any] = {"$ref": "#/$defs/phone_destination"}
"""An E.164 phone number (+15550001111) or a SIP URI (sip:agent@example.com)."""
PHRASES: dict[str, Any] = {"$ref": "#/$defs/phrases"}
"""Words or phrases the caller may say."""

# Fields every voice node accepts to override the flow's `settings`.
VOICE_SETTINGS: dict[str, Any] = {
    "voice": {"$ref": "#/$defs/settings/properties/voice"},
    "language": {"$ref": "#/$defs/settings/properties/language"},
    "barge_in": {"$ref": "#/$defs/settings/properties/barge_in"},
    "no_input_timeout": {"$ref": "#/$defs/settings/properties/no_input_timeout"},
}


@dataclass(frozen=True)
class NodeResult:
    """What a node returns: the exit it takes and the values it produced.

    ``exit`` names a field of the node that holds a node id (``next``,
    ``on_error``, ``options[1].next``, ...) — the same names the compiler
    gives the node's exits. ``outputs`` are saved under ``save_as`` when the
    node has one; ``variables`` are set directly (used by ``set``).
    """

    exit: str = "next"
    outputs: Mapping[str, Any] = field(default_factory=dict)
    variables: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NodeContext:
    """The call a node runs in: its id, the node's id and the current variables."""

    call_id: str
    node_id: str
    variables: Mapping[str, Any]
    call: Mapping[str, Any] = field(default_factory=dict)


class Services(Protocol):
    """What the engine lends a node while it runs (voice bus, HTTP session, ...).

    Concrete services are added by the runtime; a plugin asks for what it
    needs by attribute and must not keep references after ``execute`` returns.
    """


class AnswerProblem(ValueError):
    """A fixed answer that no real service could give, found by a plugin's ``simulated_outputs``.

    ``field`` is the answer's field at fault (one of the plugin's ``ANSWER_FIELDS``),
    ``message`` says what is wrong in words for the person who wrote the test, e.g.
    ``AnswerProblem("status", "'status' is an HTTP status code such as 200 or 503.")``.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
