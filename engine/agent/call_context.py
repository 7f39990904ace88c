"""What the agent asks the voxflow server about a call before serving it.

``GET {VOXFLOW_SERVER_URL}/api/internal/call-context/{call_id}`` with
``Authorization: Bearer {VOXFLOW_INTERNAL_TOKEN}`` answers a JSON object. The
agent reads, where present (top level, or under ``trigger`` / ``settings``):
``enable_recording`` (record the whole call through LiveKit egress),
``language`` and ``voice`` (the flow's), and ``stt`` / ``tts`` (the flow's
choice of speech engines, over the deployment's), ``prompts`` (the flow version's
fixed texts, prepared into the prompt cache while the agent is quiet). Anything else is ignored, so
the server may add fields freely.

The call goes on without the context when the server cannot say (not
configured, unreachable, 404): no recording, the deployment's engines.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

log = logging.getLogger(__name__)
PATH = "/api/internal/call-context/{call_id}"


@dataclass(frozen=True)
class CallContext:
    call_id: str
    enable_recording: bool = False
    language: str | None = None
    voice: str | None = None
    stt: str | None = None
    tts: str | None = None
    prompts: tuple[str, ...] = ()


def parse_call_context(call_id: str, data: Mapping[str, Any]) -> CallContext:
    places = [data, *(data.get(key) for key in ("trigger", "settings", "flow"))]
    sources = [place for place in places if isinstance(place, Mapping)]

    def pick(*names: str) -> Any:
        for source in sources:
            for name in names:
                if source.get(name) is not None:
                    return source[name]
        return None

    def text(*names: str) -> str | None:
        value = pick(*names)
        return str(value) if value not in (None, "") else None

    return CallContext(
        call_id=call_id,
        enable_recording=bool(pick("enable_recording", "record", "recording") or False),
        language=text("language"),
        voice=text("voice"),
        stt=text("stt", "stt_engine"),
        tts=text("tts", "tts_engine"),
        prompts=_texts(data.get("prompts")),
    )


def _texts(value: Any) -> tuple[str, ...]:
    """A list of texts, or nothing (a malformed answer prepares nothing)."""
    if not isinstance(value, list):
        return ()
    return tuple(text for text in value if isinstance(text, str) and text.strip())


async def fetch_call_context(
    server_url: str,
    token: str | None,
    call_id: str,
    *,
    session: aiohttp.ClientSession | None = None,
    timeout: float = 3.0,
) -> CallContext | None:
    """The server's context for ``call_id``; None (logged) when it cannot be had."""
    url = server_url.rstrip("/") + PATH.format(call_id=call_id)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    own = session is None
    client = session or aiohttp.ClientSession()
    try:
        async with client.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            if response.status != 200:
                log.warning(
                    "the voxflow server answered %s for the context of call %s; going on without it",
                    response.status,
                    call_id,
                )
                return None
            data = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as error:
        log.warning(
            "could not ask the voxflow server at %s about call %s (%s); going on without it",
            server_url,
            call_id,
            error or type(error).__name__,
        )
        return None
    finally:
        if own:
            await client.close()
    if not isinstance(data, Mapping):
        return None
    return parse_call_context(call_id, data)
