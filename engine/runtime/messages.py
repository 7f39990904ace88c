"""The dataclasses that cross Temporal: workflow input and result, activity task, signals, query.

Everything here is plain data that temporalio's default JSON converter turns
into payloads and back (it follows the type hints, so nested dataclasses such
as the compiled :class:`~engine.language.compile.FlowGraph` come back as themselves).
These shapes are recorded in workflow histories: add fields with defaults, never
rename or remove one, or saved histories stop replaying.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from engine.language.call_variables import CALL_DATA_VARIABLES
from engine.language.compile import FlowGraph

# Workflow, activity, signal and query names as other processes (the server,
# the Temporal CLI, a monitor) use them.
TASK_QUEUE = "voxflow"
WORKFLOW_NAME = "CallFlowWorkflow"
RUN_NODE_ACTIVITY = "run_node"
HANGUP_SIGNAL = "hangup"
SIGNAL_SIGNAL = "signal"
VOICE_EVENT_SIGNAL = "voice_event"
# What the telephony side learns about the caller after the call began (Number Lookup):
# a dict of call data variables, set on the running call.
CALL_DATA_SIGNAL = "call_data"
STATE_QUERY = "state"

# How a call ended.
COMPLETED = "completed"
USER_HANGUP = "user_hangup"
TIMEOUT = "timeout"
FAILED = "failed"
TRANSFERRED = "transferred"
RUNNING = "running"
CALL_STATUSES = (COMPLETED, USER_HANGUP, TIMEOUT, FAILED, TRANSFERRED)

# Call data keys that become variables of the same name (the seed's automatic variables).
AUTOMATIC_VARIABLES = CALL_DATA_VARIABLES

_Flat = TypeVar("_Flat")


def flat_data(value: Any) -> dict[str, Any]:
    """A flat dataclass (plain data in every field) as the dict temporalio would send.

    Why not let temporalio encode the dataclass: its JSON encoder calls
    ``dataclasses.asdict``, which deep-copies every variable, and inside the
    workflow sandbox each ``isinstance`` of that copy goes through the
    sandbox's proxies: about 0.2 ms per node of workflow CPU for nothing. The
    payload is the same bytes (the encoder sorts keys), so histories, replay
    and anything reading them (engine.simulate.trace) see no difference.
    """
    return {f.name: getattr(value, f.name) for f in fields(value)}


def from_flat_data(cls: type[_Flat], data: dict[str, Any]) -> _Flat:
    """Rebuild a flat dataclass from its JSON data; unknown keys are ignored.

    Why not ``result_type=`` / a dataclass parameter: temporalio's converter
    then calls ``typing.get_type_hints`` on every decode, which compiles this
    module's string annotations (``from __future__ import annotations``) again
    each time, about 0.1-0.25 ms per payload. Only for dataclasses whose fields
    are all plain JSON data (no nested dataclasses to rebuild). Like the
    converter, it ignores unknown keys, so a newer sender's extra fields do
    not break an older reader.
    """
    names = cls.__dataclass_fields__  # type: ignore[attr-defined]
    return cls(**{key: value for key, value in data.items() if key in names})


def workflow_id(call_id: str) -> str:
    """The Temporal workflow id of a call: ``call-<call id>`` (also the LiveKit room name)."""
    return f"call-{call_id}"


@dataclass(frozen=True)
class CallOptions:
    """Limits of one call, fixed when it starts (they are part of its recorded input).

    Lengths of time are in seconds. ``max_call_duration`` overrides the flow's
    ``settings.max_call_duration`` (a trigger may set it); ``None`` means use
    the flow's, and no limit if the flow has none. ``max_execution_time`` is
    the engine's own cap on a call's total running time, whatever the flow
    says. ``history_event_limit`` is how many history events a run may have
    before the call continues as new (Temporal's hard limit is 51,200).
    """

    max_call_duration: float | None = None
    warning_before: float = 60.0
    max_execution_time: float = 4 * 3600.0
    history_event_limit: int = 10_000
    heartbeat_timeout: float = 10.0
    default_node_timeout: float = 120.0
    # Write the call record and live events through activities (engine.runtime.recording).
    record: bool = False


@dataclass
class CallEvent:
    """Something worth showing on the call record: a warning, a failure, a farewell."""

    at: float  # seconds since the call started
    kind: str
    message: str
    node: str | None = None


@dataclass
class TranscriptEntry:
    """A caller's words or key presses, as reported by the voice agent."""

    at: float
    kind: str  # "transcript" or "dtmf"
    text: str
    confidence: float | None = None


@dataclass
class CallState:
    """Where a call is, carried from one run to the next when it continues as new."""

    current: str
    variables: dict[str, Any]
    visits: dict[str, int]
    path: list[str]
    steps: int
    started_at: float  # workflow time (epoch seconds) when the call began
    events: list[CallEvent] = field(default_factory=list)
    pending_signals: dict[str, list[Any]] = field(default_factory=dict)
    transcript: list[TranscriptEntry] = field(default_factory=list)
    failure: str | None = None  # set once a failure sent the call to its error handler
    warned: bool = False
    runs: int = 1
    hangup: str | None = None  # a hangup that arrived as the call continued as new


@dataclass
class CallInput:
    """The workflow's input: the compiled flow itself (version pinning) and the call.

    ``call`` is what the telephony side knows (call_sid, caller_number, ...);
    ``variables`` override the flow's defaults. ``state`` is only set when a
    long call continues as new; ``subflow`` when this run is a subflow of
    another call (it then has no timers of its own: the parent's govern).
    """

    graph: FlowGraph
    call_id: str
    call: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)
    options: CallOptions = field(default_factory=CallOptions)
    state: CallState | None = None
    subflow: bool = False


@dataclass
class CallResult:
    """How a call ended, for the call record."""

    status: str
    reason: str
    flow_id: str
    flow_version: str
    variables: dict[str, Any]
    path: list[str]
    last_node: str | None
    steps: int
    runs: int
    events: list[CallEvent] = field(default_factory=list)


@dataclass
class CallSnapshot:
    """The answer to the ``state`` query: where the call is now."""

    call_id: str
    flow_id: str
    flow_version: str
    status: str
    current_node: str | None
    path: list[str]
    variables: dict[str, Any]
    steps: int
    runs: int
    waiting_for: str | None = None
    subflow_workflow_id: str | None = None
    events: list[CallEvent] = field(default_factory=list)
    transcript: list[TranscriptEntry] = field(default_factory=list)


@dataclass
class CallSignal:
    """The generic ``signal`` signal: resumes the node waiting for the signal ``name``."""

    name: str
    payload: Any = None


@dataclass
class VoiceEvent:
    """The ``voice_event`` signal: a transcript or DTMF digits from the voice agent."""

    kind: str  # "transcript" or "dtmf"
    text: str
    confidence: float | None = None


@dataclass
class NodeTask:
    """The ``run_node`` activity's input: one I/O node with the call's variables.

    ``config`` is the compiled node config, templates not yet rendered (the
    activity renders them, so template work and its failures stay out of the
    workflow). ``timeout`` is the node's own time limit, enforced inside the
    activity; ``max_attempts`` how many attempts the flow author allowed.
    ``rendered`` marks text the workflow already filled in (a hold message),
    which must not be rendered a second time: a caller's words could contain
    ``${...}``.
    """

    call_id: str
    flow_id: str
    node_id: str
    node_type: str
    config: dict[str, Any]
    variables: dict[str, Any]
    call: dict[str, Any] = field(default_factory=dict)
    max_attempts: int = 1
    timeout: float | None = None
    rendered: bool = False
    # For recorded calls (CallOptions.record): the nodes walked since the previous
    # activity, this one last, so logic nodes reach the call record too.
    record: bool = False
    walked: list[str] = field(default_factory=list)
    # For a question (a node that talks to the caller and waits for them): what the
    # call may say after it, as written
    # (engine.language.upcoming). The activity fills them in with ``variables`` and lends
    # them to the node's voice channel, so the agent can prepare them while the caller
    # has the turn. Never spoken from here, only synthesised into the prompt cache.
    upcoming: list[str] = field(default_factory=list)


@dataclass
class NodeOutcome:
    """The ``run_node`` activity's result: the exit taken and the values produced."""

    exit: str = "next"
    outputs: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)
    # Variables (or fields) the node's templates read but the call did not have: they were
    # filled in as empty text (or their default(...)); the workflow notes a warning.
    missing: list[str] = field(default_factory=list)


# The kind of CallEvent (and the live event) that tells a flow's author a template read a
# variable the call did not have at that point.
VARIABLE_MISSING = "variable_missing"


def missing_message(flow_id: str, node_id: str, names: list[str], call_id: str) -> str:
    """The warning, in words: flow, node, variable and call."""
    listed = ", ".join(f"'{name}'" for name in names)
    noun = "variable" if len(names) == 1 else "variables"
    return (
        f"flow '{flow_id}', node '{node_id}': the {noun} {listed} had no value in call "
        f"{call_id}, so empty text was used (or the template's default(...)). Check that "
        "every path to this node sets it, or give it a default under 'variables:'."
    )


@dataclass
class SignalWait:
    """What a workflow-side wait for a signal returns to the node waiting (WAITS_FOR_SIGNAL)."""

    arrived: bool
    payload: Any = None


@dataclass
class SubflowOutcome:
    """What a subflow's child workflow returns to the ``subflow`` plugin.

    ``call_ended``: the subflow ended the call itself (it hung up, at a node
    other than an ``end`` node), so the calling flow must not go on talking.
    """

    status: str
    reason: str
    variables: dict[str, Any]
    call_ended: bool = False
