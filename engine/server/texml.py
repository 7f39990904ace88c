"""TeXML answers: the XML Telnyx follows for an inbound call.

A call voxflow takes is bridged to LiveKit SIP, where the voxflow agent
speaks and listens: ``<Dial><Sip>sip:call-<id>@LIVEKIT_SIP_HOST</Sip></Dial>``
(``call-<id>`` is also the workflow id and the LiveKit room). A call voxflow
does not take hears a message and is hung up, or is rejected.
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from engine.runtime.messages import workflow_id

_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'
CONTENT_TYPE = "application/xml"


def sip_uri(call_id: str, sip_host: str) -> str:
    return f"sip:{workflow_id(call_id)}@{sip_host}"


def dial_sip(
    call_id: str,
    sip_host: str,
    *,
    record: bool = False,
    recording_callback: str | None = None,
    username: str | None = None,
    password: str | None = None,
) -> str:
    """Bridge the call to LiveKit; with ``record`` Telnyx records it from the answer.

    ``username`` / ``password`` authenticate to LiveKit's inbound trunk when it asks.
    """
    attributes = ""
    if record:
        attributes = ' record="record-from-answer"'
        if recording_callback:
            attributes += f" recordingStatusCallback={quoteattr(recording_callback)}"
    credentials = ""
    if username and password:
        credentials = f" username={quoteattr(username)} password={quoteattr(password)}"
    uri = escape(sip_uri(call_id, sip_host))
    return f"{_HEAD}<Response><Dial{attributes}><Sip{credentials}>{uri}</Sip></Dial></Response>"


def say_and_hang_up(message: str, language: str | None = None) -> str:
    lang = f" language={quoteattr(language)}" if language else ""
    return f"{_HEAD}<Response><Say{lang}>{escape(message)}</Say><Hangup/></Response>"


def reject(reason: str = "rejected") -> str:
    """Refuse the call (``rejected`` or ``busy``) without answering it."""
    return f"{_HEAD}<Response><Reject reason={quoteattr(reason)}/></Response>"


def empty() -> str:
    """Nothing to do (a status callback)."""
    return f"{_HEAD}<Response/>"
