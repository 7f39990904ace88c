"""The variables every call has without the flow declaring them (the seed's list).

One list for both the validator (which must not warn that ``${caller_number}``
is never set) and the runtime (which sets them).
"""

from __future__ import annotations

# Filled from what the telephony side knows about the call, when it knows it.
CALL_DATA_VARIABLES = (
    "call_sid",
    "caller_number",
    "called_number",
    "caller_location",  # "City, ST": Telnyx Number Lookup (with TELNYX_API_KEY)
    "caller_carrier",  # the caller's phone company: Telnyx Number Lookup
    "caller_id_name",  # the name Telnyx shows for the caller (CNAM, SIP display name)
    "caller_attestation",  # STIR/SHAKEN attestation of the caller ID: "A", "B" or "C"
    "caller_verified",  # true when Telnyx verified the STIR/SHAKEN signature
)
# Set by the engine itself.
ENGINE_VARIABLES = (
    "call_id",
    "call_duration",  # whole seconds since the call started, updated at every node
    "flow_id",
    "flow_version",
    "last_error",  # {node, message} after a node failed
)
AUTOMATIC_VARIABLES = frozenset(CALL_DATA_VARIABLES + ENGINE_VARIABLES)
