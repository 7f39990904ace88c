"""How LiveKit rooms and participants map to voxflow calls (no livekit import: the server uses it).

A call ``<id>`` is the LiveKit room ``call-<id>`` (also its Temporal workflow
id, engine.runtime.messages.workflow_id); the voxflow agent joins it as a
participant of kind AGENT, dispatched under the agent name ``voxflow`` (LiveKit
puts that name in the participant's ``lk.agent.name`` attribute), with the
identity LiveKit Agents gives a job's participant, ``agent-<job id>``. That
identity is also the agent's id on the voice bus, so the server can tell,
from LiveKit's webhooks, whether the agent that left is the one serving the call.
"""

from __future__ import annotations

from engine.runtime.messages import workflow_id

AGENT_NAME = "voxflow"
AGENT_NAME_ATTRIBUTE = "lk.agent.name"
ROOM_PREFIX = workflow_id("")  # "call-"


def call_id_from_room(room: str) -> str | None:
    """``call-<id>`` → ``<id>``; None for rooms that are not voxflow calls.

    LiveKit SIP names a callee dispatch rule's room after the dialled user
    (``call-<id>``) when the rule has no room prefix, and ``<prefix>_call-<id>``
    when it has one (``voxflow livekit setup --room-prefix``): the call id is
    what follows the first ``_call-`` in such a name.
    """
    marker = "_" + ROOM_PREFIX
    if marker in room:
        call_id = room.split(marker, 1)[1]
        return call_id or None
    if room.startswith(ROOM_PREFIX) and len(room) > len(ROOM_PREFIX):
        return room[len(ROOM_PREFIX) :]
    return None
