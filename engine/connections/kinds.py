"""What each kind of connection holds: its fields, and the variables they stand for.

Every field has the environment variable a process would otherwise read
(``TELNYX_API_KEY``...), so a connection named in ``VOXFLOW_CONNECTIONS``
fills those variables in (engine.connections.environment) and the rest of
voxflow reads its configuration as it always did.
"""

from __future__ import annotations

from dataclasses import dataclass

TELNYX_API = "https://api.telnyx.com/v2"
TWILIO_API = "https://api.twilio.com"
OPENAI_API = "https://api.openai.com/v1"


@dataclass(frozen=True)
class FieldSpec:
    name: str
    description: str
    secret: bool = True  # asked for without echo; no value is ever printed either way
    required: bool = True
    env: str | None = None  # the variable this field stands for
    default: str | None = None


@dataclass(frozen=True)
class ConnectionKind:
    name: str
    description: str
    fields: tuple[FieldSpec, ...]

    def field(self, name: str) -> FieldSpec | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


KINDS: dict[str, ConnectionKind] = {
    kind.name: kind
    for kind in (
        ConnectionKind(
            "telnyx",
            "a Telnyx account: numbers, TeXML applications, signed webhooks",
            (
                FieldSpec(
                    "api_key",
                    "the API key (Mission Control → Account Settings → API Keys)",
                    env="TELNYX_API_KEY",
                ),
                FieldSpec(
                    "public_key",
                    "the public key webhooks are signed with (Account Settings → "
                    "Keys & Credentials → Public Key)",
                    secret=False,
                    required=False,
                    env="TELNYX_PUBLIC_KEY",
                ),
                FieldSpec(
                    "base_url",
                    "the API's address",
                    secret=False,
                    required=False,
                    env="TELNYX_BASE_URL",
                    default=TELNYX_API,
                ),
            ),
        ),
        ConnectionKind(
            "twilio",
            "a Twilio account: numbers and signed webhooks",
            (
                FieldSpec(
                    "account_sid",
                    "the Account SID (AC..., on the Twilio Console's front page)",
                    secret=False,
                    env="TWILIO_ACCOUNT_SID",
                ),
                FieldSpec("auth_token", "the Auth Token (beside the Account SID)", env="TWILIO_AUTH_TOKEN"),
                FieldSpec(
                    "base_url",
                    "the API's address",
                    secret=False,
                    required=False,
                    env="TWILIO_BASE_URL",
                    default=TWILIO_API,
                ),
            ),
        ),
        ConnectionKind(
            "livekit",
            "a LiveKit server or LiveKit Cloud project",
            (
                FieldSpec("url", "the server (https://... or wss://...)", secret=False, env="LIVEKIT_URL"),
                FieldSpec("api_key", "an API key", secret=False, env="LIVEKIT_API_KEY"),
                FieldSpec("api_secret", "that key's secret", env="LIVEKIT_API_SECRET"),
            ),
        ),
        ConnectionKind(
            "database",
            "a database flows query by name (a node's 'connection:')",
            (FieldSpec("url", "sqlite:///path/to/file.db or postgresql://user:password@host/db"),),
        ),
        ConnectionKind(
            "llm",
            "an OpenAI-compatible chat completions endpoint",
            (
                FieldSpec("api_key", "the API key", env="VOXFLOW_LLM_API_KEY"),
                FieldSpec(
                    "base_url",
                    "the endpoint's address",
                    secret=False,
                    required=False,
                    env="VOXFLOW_LLM_BASE_URL",
                    default=OPENAI_API,
                ),
                FieldSpec("model", "the model to use", secret=False, required=False, env="VOXFLOW_LLM_MODEL"),
            ),
        ),
    )
}
