"""The server's configuration, from environment variables.

=============================  =====================================================
``TELNYX_PUBLIC_KEY``          the account's Ed25519 public key (base64, or PEM);
                               webhooks are refused without it
``LIVEKIT_SIP_HOST``           where TeXML sends calls: ``sip:call-<id>@HOST``
``VOXFLOW_API_TOKEN``          the token for /api, the event streams and the monitor
``VOXFLOW_INTERNAL_TOKEN``     the token the voice agent sends to /api/internal/...
``VOXFLOW_PUBLIC_URL``         this server as Telnyx reaches it (recording callbacks)
``VOXFLOW_UNKNOWN_NUMBER``     ``reject`` (default), ``message`` or ``flow:<flow id>``
``VOXFLOW_UNKNOWN_NUMBER_MESSAGE``  what ``message`` says
``VOXFLOW_RECORDS_URL``        call records: ``sqlite:///path`` (default
                               ``sqlite:///.voxflow/calls.db``) or ``postgresql://...``
``VOXFLOW_REDIS_URL``          live events between processes (Redis pub/sub); without
                               it, only events of this process are seen. Also the
                               voice bus ``voxflow serve`` tells a call its agent left
``VOXFLOW_FLOWS``              the folder of flows and triggers (default ``flows``)
``VOXFLOW_TELNYX_DTMF``        ``bus``: pass call.dtmf.received keys to the voice bus
``VOXFLOW_SIP_USERNAME``,      credentials TeXML's ``<Sip>`` gives LiveKit's inbound
``VOXFLOW_SIP_PASSWORD``       trunk (set the same on the trunk: voxflow livekit setup)
``TWILIO_AUTH_TOKEN``          the Twilio account's Auth Token: Twilio's webhooks
                               are signed with it, and refused without it
``TWILIO_ACCOUNT_SID``         (optional) refuse requests for other Twilio accounts
``VOXFLOW_CONNECTIONS``        stored connections whose values stand for these
                               variables (engine.connections.environment)
``LIVEKIT_API_KEY``,           the key LiveKit signs its webhooks with (``webhook:
``LIVEKIT_API_SECRET``         api_key`` in its config); /webhooks/livekit is refused
                               without them
``TELNYX_API_KEY``             lets voxflow command Telnyx: answer and bridge calls
                               that come through a Call Control application, and
                               look up callers' carrier and location (Number Lookup)
``TELNYX_BASE_URL``            Telnyx's API (default ``https://api.telnyx.com/v2``)
``VOXFLOW_NUMBER_LOOKUP``      ``off``: no Number Lookup even with an API key
``VOXFLOW_TEMPORAL_DEADLINE``  seconds a webhook waits for Temporal to start a call
                               before the caller hears an apology (default 0.8)
``VOXFLOW_RECONCILE_SECONDS``  how often calls whose workflow ended without closing
                               their record are closed (default 30; 0: never)
``VOXFLOW_ALLOWED_ORIGINS``    other web origins (``https://ops.example.com``, comma
                               separated) whose pages may open the WebSocket
``LIVEKIT_URL``                the LiveKit server: when its webhook says the agent of a
                               call died, a new agent is dispatched to the call's room
=============================  =====================================================

plus the Temporal variables (``TEMPORAL_ADDRESS``...) of engine.runtime.temporal_server.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from nacl.signing import VerifyKey

from engine.connections.environment import with_connections
from engine.core.errors import VoxflowError
from engine.runtime.messages import TASK_QUEUE
from engine.server.routing import DEFAULT_UNKNOWN_MESSAGE, UnknownNumberPolicy
from engine.server.telnyx import TOLERANCE_SECONDS, load_public_key

DEFAULT_SIP_HOST = "sip.livekit.local"
# A call start takes milliseconds; a Temporal that is down would keep the caller
# waiting 6-10 s while the client retries. The answer must come within 1 s.
DEFAULT_TEMPORAL_DEADLINE = 0.8


@dataclass(frozen=True)
class ServerSettings:
    telnyx_key: VerifyKey | None = None
    allow_unsigned: bool = False  # `voxflow dev` without a key only
    sip_host: str = DEFAULT_SIP_HOST
    api_token: str | None = None  # None: the API is open (dev on localhost only)
    internal_token: str | None = None
    public_url: str | None = None
    unknown: UnknownNumberPolicy = field(default_factory=UnknownNumberPolicy)
    records_url: str | None = None
    redis_url: str | None = None
    flows_dir: Path = Path("flows")
    task_queue: str = TASK_QUEUE
    tolerance: float = TOLERANCE_SECONDS
    dtmf_to_bus: bool = False
    sip_username: str | None = None
    sip_password: str | None = None
    livekit_api_key: str | None = None
    livekit_api_secret: str | None = None
    twilio_auth_token: str | None = None
    twilio_account_sid: str | None = None
    telnyx_api_key: str | None = None
    telnyx_api_url: str | None = None
    number_lookup: bool = True  # with an API key only
    temporal_deadline: float = DEFAULT_TEMPORAL_DEADLINE
    reconcile_seconds: float = 30.0
    allowed_origins: tuple[str, ...] = ()

    @property
    def event_lease(self) -> float:
        """How long a Call Control event is held by the delivery handling it: past that, a
        delivery that died mid-way (a killed server) no longer keeps the retry out."""
        return max(5.0, 2 * self.temporal_deadline + 3.0)

    livekit_url: str | None = None


def settings_from_env(env: Mapping[str, str] | None = None) -> ServerSettings:
    env = os.environ if env is None else env
    env = with_connections(env)

    def value(name: str) -> str | None:
        text = env.get(name, "").strip()
        return text or None

    key_text = value("TELNYX_PUBLIC_KEY")
    return ServerSettings(
        telnyx_key=load_public_key(key_text) if key_text else None,
        sip_host=value("LIVEKIT_SIP_HOST") or DEFAULT_SIP_HOST,
        api_token=value("VOXFLOW_API_TOKEN"),
        internal_token=value("VOXFLOW_INTERNAL_TOKEN"),
        public_url=(value("VOXFLOW_PUBLIC_URL") or "").rstrip("/") or None,
        unknown=unknown_policy(value("VOXFLOW_UNKNOWN_NUMBER"), value("VOXFLOW_UNKNOWN_NUMBER_MESSAGE")),
        records_url=value("VOXFLOW_RECORDS_URL"),
        redis_url=value("VOXFLOW_REDIS_URL"),
        flows_dir=Path(value("VOXFLOW_FLOWS") or "flows"),
        dtmf_to_bus=(value("VOXFLOW_TELNYX_DTMF") or "").lower() == "bus",
        sip_username=value("VOXFLOW_SIP_USERNAME"),
        sip_password=value("VOXFLOW_SIP_PASSWORD"),
        livekit_api_key=value("LIVEKIT_API_KEY"),
        livekit_api_secret=value("LIVEKIT_API_SECRET"),
        twilio_auth_token=value("TWILIO_AUTH_TOKEN"),
        twilio_account_sid=value("TWILIO_ACCOUNT_SID"),
        telnyx_api_key=value("TELNYX_API_KEY"),
        telnyx_api_url=value("TELNYX_BASE_URL"),
        number_lookup=(value("VOXFLOW_NUMBER_LOOKUP") or "on").lower() not in ("off", "0", "no", "false"),
        temporal_deadline=_seconds(
            value("VOXFLOW_TEMPORAL_DEADLINE"), "VOXFLOW_TEMPORAL_DEADLINE", DEFAULT_TEMPORAL_DEADLINE
        ),
        reconcile_seconds=_seconds(
            value("VOXFLOW_RECONCILE_SECONDS"), "VOXFLOW_RECONCILE_SECONDS", 30.0, zero=True
        ),
        allowed_origins=tuple(
            o.strip().rstrip("/") for o in (value("VOXFLOW_ALLOWED_ORIGINS") or "").split(",") if o.strip()
        ),
        livekit_url=value("LIVEKIT_URL"),
    )


def _seconds(text: str | None, name: str, default: float, zero: bool = False) -> float:
    if text is None:
        return default
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not (seconds > 0 or (zero and seconds == 0)) or seconds != seconds:
        raise VoxflowError(f"{name} is '{text}'; write a number of seconds, e.g. {default:g}.")
    return seconds


def unknown_policy(action: str | None, message: str | None) -> UnknownNumberPolicy:
    text = (action or "reject").strip()
    if text == "reject":
        return UnknownNumberPolicy("reject")
    if text == "message":
        return UnknownNumberPolicy("message", message or DEFAULT_UNKNOWN_MESSAGE)
    if text.startswith("flow:") and text[5:].strip():
        return UnknownNumberPolicy("flow", flow=text[5:].strip())
    raise VoxflowError(
        f"VOXFLOW_UNKNOWN_NUMBER is '{text}'; use reject, message (with "
        "VOXFLOW_UNKNOWN_NUMBER_MESSAGE) or flow:<flow name>, e.g. flow:voicemail."
    )
