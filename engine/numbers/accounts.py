"""Which carrier account a ``voxflow numbers`` command works on.

``--connection NAME`` names a stored connection; without it, the one stored
connection of the carrier (``--carrier``) is used, or else the carrier's
variables (``TELNYX_API_KEY``; ``TWILIO_ACCOUNT_SID`` and ``TWILIO_AUTH_TOKEN``).
"""

from __future__ import annotations

from collections.abc import Mapping

from engine.connections.store import Connection, ConnectionStore
from engine.core.errors import VoxflowError
from engine.numbers.model import CARRIERS, Carrier


def carrier_from_connection(connection: Connection) -> Carrier:
    account = f"the connection '{connection.name}'"
    if connection.kind == "telnyx":
        from engine.numbers.telnyx_numbers import telnyx_carrier

        return telnyx_carrier(connection.value, account)
    if connection.kind == "twilio":
        from engine.numbers.twilio_numbers import twilio_carrier

        return twilio_carrier(connection.value, account)
    raise VoxflowError(
        f"the connection '{connection.name}' is a {connection.kind} connection; "
        f"phone numbers need a {' or '.join(CARRIERS)} connection."
    )


def _from_env(kind: str, env: Mapping[str, str]) -> Carrier | None:
    def value(name: str) -> str | None:
        return env.get(name, "").strip() or None

    if kind == "telnyx" and value("TELNYX_API_KEY"):
        from engine.numbers.telnyx_numbers import TelnyxCarrier

        return TelnyxCarrier(str(value("TELNYX_API_KEY")), value("TELNYX_BASE_URL"), "TELNYX_API_KEY")
    if kind == "twilio" and value("TWILIO_ACCOUNT_SID") and value("TWILIO_AUTH_TOKEN"):
        from engine.numbers.twilio_numbers import TwilioCarrier

        return TwilioCarrier(
            str(value("TWILIO_ACCOUNT_SID")),
            str(value("TWILIO_AUTH_TOKEN")),
            value("TWILIO_BASE_URL"),
            "TWILIO_ACCOUNT_SID",
        )
    return None


def choose_carrier(
    store: ConnectionStore, env: Mapping[str, str], connection: str | None, carrier: str | None
) -> Carrier:
    if connection:
        chosen = carrier_from_connection(store.get(connection))
        if carrier and chosen.name != carrier:
            raise VoxflowError(f"the connection '{connection}' is a {chosen.name} account, not {carrier}.")
        return chosen
    carriers = [carrier] if carrier else list(CARRIERS)
    stored = [(e.name, e.kind) for e in store.entries() if e.kind in carriers]
    if len(stored) == 1:
        return carrier_from_connection(store.get(stored[0][0]))
    if len(stored) > 1:
        raise VoxflowError(
            "several carrier connections are stored ("
            + ", ".join(f"{n} ({k})" for n, k in stored)
            + "): say which with --connection NAME."
        )
    from_env = [c for c in (_from_env(k, env) for k in carriers) if c is not None]
    if len(from_env) == 1:
        return from_env[0]
    if len(from_env) > 1:
        raise VoxflowError(
            "both Telnyx and Twilio credentials are set in the environment: "
            "say which with --carrier telnyx or --carrier twilio."
        )
    wanted = carrier or "telnyx or twilio"
    raise VoxflowError(
        f"no {wanted} account to work on: add one with `voxflow connections add "
        f"NAME {carrier or 'telnyx'}` (or set TELNYX_API_KEY, or "
        "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN)."
    )


def every_carrier(
    store: ConnectionStore, env: Mapping[str, str], connection: str | None, carrier: str | None
) -> list[Carrier]:
    """Every account ``numbers list`` looks at: all stored carrier connections, or the one named."""
    if connection:
        return [choose_carrier(store, env, connection, carrier)]
    carriers = [carrier] if carrier else list(CARRIERS)
    stored = [e.name for e in store.entries() if e.kind in carriers]
    if stored:
        return [carrier_from_connection(store.get(name)) for name in stored]
    found = [c for c in (_from_env(k, env) for k in carriers) if c is not None]
    if not found:
        choose_carrier(store, env, None, carrier)  # raises, saying how to add one
    return found
