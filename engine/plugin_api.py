"""Everything a node plugin may use from voxflow: import it from here, and only here.

A node type is one Python module, registered under the ``voxflow.nodes``
entry point group (the built-ins in ``plugins/`` are registered the same way
in pyproject.toml, and use nothing but this module: tests/test_layers.py
fails if they reach past it). The module provides:

``NODE_TYPE``
    the name written after ``type:`` in a flow file.
``DOC``
    a short explanation for flow authors; the first line is its summary.
``SCHEMA``
    a JSON Schema (draft 2020-12) object schema for the node's own fields.
    Use the building blocks below (:data:`NODE_REF`, :data:`TEMPLATE`, ...):
    the compiler finds a node's exits and templates through them, so a new
    node type needs no change to the engine. A node with ``OUTPUTS`` should
    accept ``save_as`` (:data:`VARIABLE_NAME`): outputs are saved under it.
``OUTPUTS``
    output name → description.
``execute(config, context, services)``
    a coroutine returning a :class:`NodeResult`. ``config`` holds the node's
    fields with every template already filled in: do not render them again
    (a value the caller said may contain ``${...}``).

Attributes that tell the engine what kind of node it is (all optional):

``RUNS_IN`` (default ``"activity"``)
    where the node runs. Every plugin from another package runs as an
    activity; ``"workflow"`` is for voxflow's own deterministic logic nodes,
    and is refused at load for any other package.
``WAITS`` (default False)
    True when the node waits for the caller or the outside world (listen,
    menu, signal, subflow). A loop through such a node is paced by people, so
    the validator does not warn that it has no bound.
``TALKS_TO_CALLER`` (default False)
    True when the node speaks or listens on the call's voice channel. Such a
    node is drawn as a voice step and simulated by the simulated caller; any
    other activity node calls an outside service, so ``voxflow chat`` and
    ``voxflow test`` ask for (or replay) its answer instead of calling it.
``HEARS_HANGUP`` (default False)
    True when the node notices by itself that the caller hung up (the voice
    nodes: the voice bus says ``call:caller_left``). Other nodes heartbeat
    every second so that Temporal can tell them of a hangup.
``CALLS_FLOW`` (default None)
    the name of the node's field that names another flow it runs (``subflow``:
    ``"flow"``), so that validation, compiling, diffs and traces follow it.
``WAITS_FOR_SIGNAL`` (default None)
    the name of the node's field that names the signal it waits for, so that
    conversation tests can send it.
``DIAGRAM_SHAPE`` (default None)
    how diagrams draw the node: ``"decision"``, ``"subflow"`` or ``"wait"``.
``describe(config)`` (optional function)
    a few words on what the node does, for diagrams (``GET https://...``).
``SPOKEN_FIELDS`` (default ``()``)
    the node's fields whose text is said to the caller, the most telling
    first (``("prompt",)``). Diagrams quote the first one given; the voice
    agent synthesises their fixed texts ahead of the call (the ``reprompt``
    and ``say`` of fields built from :data:`EVENT_HANDLERS` count too,
    without being listed).
``ANSWER_FIELDS`` and ``simulated_outputs(answer, config)`` (optional, together)
    the short form of a fixed answer for a node that calls an outside
    service, in ``voxflow test`` and ``voxflow chat --answers``.
    ``ANSWER_FIELDS`` maps each field a test may write (``status``,
    ``body``) to what it is; ``simulated_outputs`` turns the fields a test
    wrote into the outputs the node gives, as if its service had answered
    so. ``config`` is the node's config, filled in. Raise
    :class:`AnswerProblem` for a value no service could answer (checked when
    the test is read, with ``config`` as written), or any other exception to
    fail the node as that answer would (a status of 503). Without them, a
    test gives such a node its ``outputs:`` in full.
``ENGINE_ROLE`` (voxflow's own nodes only)
    the job the engine itself gives the node: ``"end"`` (ends the flow),
    ``"say"`` (a hold message), ``"farewell"`` (a goodbye and hang up),
    ``"transfer"`` (the call ends as transferred).

What a node is lent (``services``): activity nodes get
:class:`ActivityServices` (``activity_services(services, [...], NODE_TYPE)``
turns a missing one into a plain sentence); voice nodes open the call's
channel with :func:`open_channel`.
"""

from __future__ import annotations

from engine.core.errors import VoxflowError
from engine.language.node_contract import (
    DURATION,
    EVENT_HANDLERS,
    EXPRESSION,
    NODE_REF,
    PHONE_DESTINATION,
    PHRASES,
    RAW_TEXT,
    RETRY,
    TEMPLATE,
    URL,
    VARIABLE_NAME,
    VOICE_SETTINGS,
    AnswerProblem,
    NodeContext,
    NodeResult,
    RunsIn,
    Services,
)
from engine.language.registry import ENGINE_ROLES
from engine.language.schema import E164_PATTERN, SIP_URI_PATTERN
from engine.language.templates import evaluate, render, render_value, url_origin
from engine.runtime.service_types import (
    ActivityServices,
    Database,
    LlmSettings,
    QueryResult,
    WorkflowServices,
    activity_services,
    workflow_services,
)
from engine.voice.dialog import (
    Accepted,
    NoInput,
    NoMatch,
    RapidInterruptions,
    Verdict,
    converse,
    first_sentence,
    human_phrase,
    is_low_confidence,
)
from engine.voice.errors import COMPLETED, TRANSFERRED, CallEnded
from engine.voice.matching import match_phrases, spoken_key
from engine.voice.nodes import call_ended, ended_by, open_channel, prompt
from engine.voice.settings import VoiceSettings, voice_settings

__all__ = [
    "COMPLETED",
    "DURATION",
    "E164_PATTERN",
    "ENGINE_ROLES",
    "EVENT_HANDLERS",
    "EXPRESSION",
    "NODE_REF",
    "PHONE_DESTINATION",
    "PHRASES",
    "RAW_TEXT",
    "RETRY",
    "SIP_URI_PATTERN",
    "TEMPLATE",
    "TRANSFERRED",
    "URL",
    "VARIABLE_NAME",
    "VOICE_SETTINGS",
    "Accepted",
    "ActivityServices",
    "AnswerProblem",
    "CallEnded",
    "Database",
    "LlmSettings",
    "NoInput",
    "NoMatch",
    "NodeContext",
    "NodeResult",
    "QueryResult",
    "RapidInterruptions",
    "RunsIn",
    "Services",
    "Verdict",
    "VoiceSettings",
    "VoxflowError",
    "WorkflowServices",
    "activity_services",
    "call_ended",
    "converse",
    "ended_by",
    "evaluate",
    "first_sentence",
    "human_phrase",
    "is_low_confidence",
    "match_phrases",
    "open_channel",
    "prompt",
    "render",
    "render_value",
    "spoken_key",
    "url_origin",
    "voice_settings",
    "workflow_services",
]
