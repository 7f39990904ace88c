"""``voxflow connections test``: one real call to the service, and what is wrong in words."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

from engine.connections.store import Connection
from engine.core.errors import VoxflowError


def test_connection(connection: Connection) -> list[str]:
    """What was checked, one sentence each; VoxflowError naming the first problem."""
    check = CHECKS.get(connection.kind)
    if check is None:
        raise VoxflowError(f"voxflow cannot test a {connection.kind} connection.")
    return check(connection)


def _carrier(connection: Connection) -> list[str]:
    from engine.numbers.accounts import carrier_from_connection

    said = [carrier_from_connection(connection).check()]
    public_key = connection.value("public_key")
    if connection.kind == "telnyx" and public_key:
        from engine.server.telnyx import load_public_key

        load_public_key(public_key)
        said.append("the public key is an Ed25519 key, as Telnyx signs webhooks with")
    elif connection.kind == "telnyx":
        said.append(
            "no public key is stored: the server needs it (TELNYX_PUBLIC_KEY) to accept Telnyx's webhooks"
        )
    return said


def _livekit(connection: Connection) -> list[str]:
    import aiohttp
    from livekit.api.sip_service import SipService
    from livekit.api.twirp_client import ServerError
    from livekit.protocol import sip as lk_sip

    url = connection.require("url")

    async def ask() -> int:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
            service = SipService(
                session, url, connection.require("api_key"), connection.require("api_secret")
            )
            found = await service.list_inbound_trunk(lk_sip.ListSIPInboundTrunkRequest())
            return len(found.items)

    try:
        trunks = asyncio.run(ask())
    except ServerError as error:
        if error.status == 401:
            raise VoxflowError(
                f"LiveKit at {url} refused the API key and secret of the "
                f"connection '{connection.name}': one of them is wrong."
            ) from None
        if error.status == 403:
            raise VoxflowError(
                f"the API key of the connection '{connection.name}' has no "
                "permission to manage SIP on LiveKit (it needs the SIP admin "
                "grant)."
            ) from None
        raise VoxflowError(
            f"LiveKit at {url} answered {error.status}: {error.message or error.code}."
        ) from None
    except (TimeoutError, aiohttp.ClientError, ValueError) as error:
        raise VoxflowError(
            f"cannot reach LiveKit at {url} ({type(error).__name__}): check the "
            "connection's url (https://... or wss://...)."
        ) from None
    return [f"LiveKit accepted the key and secret ({trunks} SIP inbound trunk{'' if trunks == 1 else 's'})"]


def _database(connection: Connection) -> list[str]:
    from engine.runtime.config import _check_url

    url = _check_url(connection.name, connection.require("url"), Path.cwd(), where=connection.name)
    if url.startswith("sqlite"):
        path = url[len("sqlite:///") :]
        try:
            with sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=5) as db:
                db.execute("SELECT 1").fetchone()
        except sqlite3.Error as error:
            raise VoxflowError(
                f"the SQLite database of the connection '{connection.name}' "
                f"cannot be opened ({error}): does the file exist?"
            ) from None
        return ["the SQLite database opens and answers"]
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=10) as db:
            db.execute("SELECT 1")
    except psycopg.OperationalError as error:
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else "no answer"
        password = connection.values.get("url", "")
        raise VoxflowError(
            f"PostgreSQL refused the connection '{connection.name}': {_without(reason, password)}"
        ) from None
    return ["PostgreSQL accepted the connection and answers"]


def _llm(connection: Connection) -> list[str]:
    import aiohttp

    base = connection.require("base_url").rstrip("/")
    key = connection.require("api_key")

    async def ask() -> tuple[int, object]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
            async with session.get(f"{base}/models", headers={"Authorization": f"Bearer {key}"}) as response:
                if response.status != 200:
                    return response.status, None
                try:
                    return 200, await response.json(content_type=None)
                except ValueError:
                    return 200, None  # not JSON: said below

    try:
        status, body = asyncio.run(ask())
    except (TimeoutError, aiohttp.ClientError, ValueError):
        raise VoxflowError(
            f"cannot reach the LLM endpoint {base}: check the connection's "
            "base_url (e.g. https://api.openai.com/v1)."
        ) from None
    if status == 401:
        raise VoxflowError(
            f"the LLM endpoint {base} refused the API key of the connection "
            f"'{connection.name}' (401): the key is wrong or was revoked."
        )
    if status == 403:
        raise VoxflowError(
            f"the API key of the connection '{connection.name}' has no permission at {base} (403)."
        )
    if status == 404:
        raise VoxflowError(f"{base}/models does not exist (404): the base_url is probably missing its /v1.")
    if status >= 400:
        raise VoxflowError(f"the LLM endpoint {base} answered {status}.")
    listed = body.get("data") if isinstance(body, dict) else None
    if not isinstance(listed, list):
        raise VoxflowError(
            f"{base}/models did not answer as an OpenAI-compatible endpoint "
            "does (a JSON list of models): check the base_url."
        )
    models = [m.get("id") for m in listed if isinstance(m, dict)]
    model = connection.value("model")
    if model and models and model not in models:
        raise VoxflowError(
            f"the LLM endpoint {base} has no model '{model}' (it has "
            f"{', '.join(str(m) for m in models[:8])})."
        )
    return [
        f"the LLM endpoint accepted the key ({len(models)} models"
        + (f", {model} among them" if model else "")
        + ")"
    ]


def _without(text: str, secret_url: str) -> str:
    """PostgreSQL's words with the URL's password taken out, should they repeat it."""
    from urllib.parse import urlsplit

    password = urlsplit(secret_url).password
    return text.replace(password, "***") if password else text


CHECKS: dict[str, Callable[[Connection], list[str]]] = {
    "telnyx": _carrier,
    "twilio": _carrier,
    "livekit": _livekit,
    "database": _database,
    "llm": _llm,
}
