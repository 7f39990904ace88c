"""Connections named in the environment become the variables they stand for.

``VOXFLOW_CONNECTIONS=telnyx-main,twilio-main,livekit`` gives a process
(``voxflow serve``, ``worker``, ``dev``) the values of those connections as if
``TELNYX_PUBLIC_KEY``, ``TWILIO_AUTH_TOKEN``, ``LIVEKIT_URL``... were set; a
variable that is set wins. A database connection in the list becomes
``VOXFLOW_DATABASE_<NAME>`` (flows find it by its name anyway), and
``VOXFLOW_RECORDS_CONNECTION=NAME`` gives the call records database.
Without those two variables the connections file is not even opened.
"""

from __future__ import annotations

from collections.abc import Mapping

from engine.connections.kinds import KINDS
from engine.connections.store import default_store
from engine.core.errors import VoxflowError

LIST_VARIABLE = "VOXFLOW_CONNECTIONS"
RECORDS_VARIABLE = "VOXFLOW_RECORDS_CONNECTION"


def with_connections(env: Mapping[str, str]) -> Mapping[str, str]:
    """``env`` with the named connections' variables filled in (set variables win)."""
    names = [n.strip() for n in env.get(LIST_VARIABLE, "").split(",") if n.strip()]
    records = env.get(RECORDS_VARIABLE, "").strip()
    if not names and not records:
        return env
    store = default_store(env)
    filled: dict[str, str] = {}
    for name in names:
        connection = store.get(name)
        if connection.kind == "database":
            filled[f"VOXFLOW_DATABASE_{name.upper().replace('-', '_')}"] = connection.require("url")
            continue
        for spec in KINDS[connection.kind].fields:
            value = connection.values.get(spec.name)
            if spec.env and value:
                if spec.env in filled:
                    raise VoxflowError(
                        f"{LIST_VARIABLE} names two {connection.kind} connections; a process "
                        f"uses one ({spec.env} would be set twice). Keep one of them."
                    )
                filled[spec.env] = value
    if records:
        connection = store.get(records)
        if connection.kind != "database":
            raise VoxflowError(
                f"{RECORDS_VARIABLE} names '{records}', a {connection.kind} "
                "connection; it must name a database connection."
            )
        filled["VOXFLOW_RECORDS_URL"] = connection.require("url")
    merged = dict(filled)
    merged.update({k: v for k, v in env.items() if v.strip() or k not in filled})
    return merged
