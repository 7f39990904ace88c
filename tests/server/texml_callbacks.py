"""Telnyx's documented TeXML requests and callbacks, as form fields.

Taken from the examples of Telnyx's API reference (developers.telnyx.com,
api-reference/callbacks/texml-call-initiated, -ringing, -answered, -completed,
texml-recording-in-progress, texml-recording-completed) and the instruction
fetch of docs/voice/programmable-voice/texml-instruction-fetching. The
conformance folder holds only the Call Control examples, so these are written
out here; each test puts its own CallSid (and numbers) in.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

ACCOUNT = "f5586561-8ff0-4291-a51b-c7dfe4139ff9"
CALLER = "+35319605860"
CALLED = "+13129457420"

# The instruction fetch: what Telnyx sends to the TeXML application's voice URL.
INSTRUCTIONS: dict[str, Any] = {
    "AccountSid": ACCOUNT,
    "CallSid": "",
    "CallSidLegacy": "",
    "From": CALLER,
    "To": CALLED,
    "ConnectionId": "1568109700606592442",
    "ApiVersion": "2010-04-01",
    "CallStatus": "ringing",
    "Direction": "inbound",
}

_PROGRESS: dict[str, Any] = {
    "AccountSid": ACCOUNT,
    "CallInitiatedAt": "2024-01-15T10:30:26.028Z",
    "CallSid": "",
    "CallSidLegacy": "",
    "CallbackSource": "call-progress-events",
    "ConnectionId": "1234567890",
    "From": CALLER,
    "Timestamp": "2024-01-15T10:30:00Z",
    "To": CALLED,
    "CallerId": "John Doe",
    "ErrorCode": "10001",
    "ErrorMessage": "Call failed",
    "ParentCallSid": "v3:MdI91X4lWFEs7IgbBEOT9M4AigoY08M0WWZFISt1Yw2axZ_IiE4pqg",
    "ParentCallSidLegacy": "v3:MdI91X4lWFEs7IgbBEOT9M4AigoY08M0WWZFISt1Yw2axZ_IiE4pqg",
    "ShakenStirAttestation": "A",
    "ShakenStirValidated": "true",
}
INITIATED = {**_PROGRESS, "CallStatus": "initiated", "SequenceNumber": "0"}
RINGING = {**_PROGRESS, "CallStatus": "ringing", "SequenceNumber": "1", "CallDuration": "10"}
ANSWERED = {
    **_PROGRESS,
    "CallStatus": "in-progress",
    "SequenceNumber": "2",
    "CallDuration": "15",
    "Codec": "PCMU",
    "SamplingRate": "8000",
}
COMPLETED = {
    **_PROGRESS,
    "CallStatus": "completed",
    "SequenceNumber": "3",
    "AnsweredTime": "2024-01-15T10:30:15Z",
    "CallControlId": "",
    "CallDuration": "45",
    "CallLegId": "abc123-leg1",
    "CallQualityStats": '{"mos":4.2,"jitter":10,"packet_loss":0.5}',
    "CallSessionId": "session-abc123",
    "DialCallDuration": "120",
    "DialCallSid": "",
    "DialCallSidLegacy": "",
    "DialCallStatus": "completed",
    "EndTime": "2024-01-15T10:31:00Z",
    "HangupCause": "normal_clearing",
    "HangupSource": "caller",
    "OccurredAt": "2024-01-15T10:31:00Z",
    "OrganizationId": "org-abc123",
    "RecordingDuration": "90",
    "RecordingUrl": "https://api.telnyx.com/v2/recordings/abc123.wav",
    "SipHangupCause": "200",
    "StartTime": "2024-01-15T10:30:00Z",
    "UserId": ACCOUNT,
}
RECORDING_IN_PROGRESS = {
    "AccountSid": "cb6cfbbc-eb00-41af-a3f3-0d7b32009e4b",
    "CallSid": "",
    "CallSidLegacy": "",
    "ConnectionId": "1234567890",
    "RecordingChannels": "1",
    "RecordingSource": "DialVerb",
    "RecordingStatus": "in-progress",
    "RecordingSid": "35094891-3290-4142-b2c2-b2eda57534cf",
}
RECORDING_COMPLETED = {
    **RECORDING_IN_PROGRESS,
    "RecordingDuration": "5",
    "RecordingStatus": "completed",
    "RecordingUrl": "https://recording.com/your-recording-url",
}


def form(example: dict[str, Any], call_sid: str, **changes: str | None) -> bytes:
    """The example for ``call_sid`` (CallSid and its legacy and control-id twins), with
    ``changes`` applied (None removes a field), as Telnyx posts it."""
    fields = dict(example)
    for name in ("CallSid", "CallSidLegacy", "CallControlId", "DialCallSid", "DialCallSidLegacy"):
        if name in fields:
            fields[name] = call_sid
    for name, value in changes.items():
        if value is None:
            fields.pop(name, None)
        else:
            fields[name] = value
    return urllib.parse.urlencode(fields).encode()
