"""LiveKit's webhooks, made and signed exactly as a LiveKit server sends them.

livekit/protocol's webhook notifier: the body is the ``WebhookEvent`` in
protobuf JSON (camelCase names, enums by name); the ``Authorization`` header
is, with no "Bearer", an access token of the signing API key, valid 5 minutes,
whose ``sha256`` claim is the base64 SHA-256 of the body; the content type is
``application/webhook+json``. The token is made with livekit-api's own
AccessToken, never with the code under test.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import time
import uuid
from dataclasses import dataclass

from google.protobuf.json_format import MessageToJson
from livekit import api
from livekit.protocol import models, webhook

KEY = "voxflow-test-key"
SECRET = "a-livekit-secret-of-32-characters-at-least"
AGENT = models.ParticipantInfo.Kind.AGENT
SIP = models.ParticipantInfo.Kind.SIP


@dataclass(frozen=True)
class LiveKitSigner:
    api_key: str = KEY
    api_secret: str = SECRET

    def headers(self, body: bytes, *, valid_for: dt.timedelta = dt.timedelta(minutes=5)) -> dict[str, str]:
        digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
        token = (
            api.AccessToken(self.api_key, self.api_secret).with_ttl(valid_for).with_sha256(digest).to_jwt()
        )
        return {"Authorization": token, "Content-Type": "application/webhook+json"}


def participant_left(
    room: str,
    identity: str,
    *,
    kind: int = AGENT,
    agent_name: str | None = "voxflow",
    reason: int = models.DisconnectReason.SIGNAL_CLOSE,
    event: str = "participant_left",
    event_id: str | None = None,
) -> bytes:
    """A ``participant_left`` webhook body for ``identity`` leaving ``room``."""
    attributes = {"lk.agent.name": agent_name} if agent_name else {}
    now = int(time.time())
    message = webhook.WebhookEvent(
        event=event,
        id=event_id or f"EV_{uuid.uuid4().hex[:12]}",
        created_at=now,
        room=models.Room(sid=f"RM_{uuid.uuid4().hex[:12]}", name=room, creation_time=now - 30),
        participant=models.ParticipantInfo(
            sid=f"PA_{uuid.uuid4().hex[:12]}",
            identity=identity,
            kind=kind,  # type: ignore[arg-type]
            state=models.ParticipantInfo.State.DISCONNECTED,
            attributes=attributes,
            disconnect_reason=reason,  # type: ignore[arg-type]
            joined_at=now - 20,
        ),
    )
    return MessageToJson(message, indent=None).encode()  # type: ignore[call-arg]
