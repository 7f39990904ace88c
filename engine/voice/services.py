"""Finding the voice bus (and clock) in the services a plugin is lent.

The runtime gives voice nodes ``services.voice_bus`` (a
:class:`~engine.voice.bus.VoiceBus`), and may give ``services.voice_clock``
(a :class:`~engine.voice.clock.Clock`; real time when absent), and
``services.upcoming_prompts``: what the call may say after the node, filled in
(the run_node activity lends it; engine.language.upcoming).
"""

from __future__ import annotations

from typing import cast

from engine.core.errors import VoxflowError
from engine.voice.bus import VoiceBus
from engine.voice.clock import REAL_CLOCK, Clock

VOICE_BUS_ATTRIBUTE = "voice_bus"
VOICE_CLOCK_ATTRIBUTE = "voice_clock"
UPCOMING_ATTRIBUTE = "upcoming_prompts"


def voice_bus(services: object, node_type: str) -> VoiceBus:
    """``services.voice_bus``, or a plain error naming the node that needed it."""
    bus = getattr(services, VOICE_BUS_ATTRIBUTE, None)
    if bus is None:
        raise VoxflowError(
            f"the {node_type} node needs the voice bus (services.{VOICE_BUS_ATTRIBUTE}), which "
            "'voxflow worker' and 'voxflow dev' provide; it cannot run without one."
        )
    return cast(VoiceBus, bus)


def voice_clock(services: object) -> Clock:
    clock = getattr(services, VOICE_CLOCK_ATTRIBUTE, None)
    return cast(Clock, clock) if clock is not None else REAL_CLOCK


def upcoming_prompts(services: object) -> tuple[str, ...]:
    """The texts the call may say after this node (none when the runtime lends none)."""
    return tuple(getattr(services, UPCOMING_ATTRIBUTE, None) or ())
