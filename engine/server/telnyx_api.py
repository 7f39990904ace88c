"""Telnyx's REST API, through Telnyx's own SDK: Call Control commands and Number Lookup.

Used only when ``TELNYX_API_KEY`` is set. A call that arrives through a Call
Control application (``call.initiated``, no TeXML) is answered and bridged to
LiveKit here: ``answer``, then ``transfer`` to ``sip:call-<id>@LIVEKIT_SIP_HOST``.
Every command carries a ``command_id`` made from the call and the command, so
a command sent twice (a redelivered webhook, two replicas) is done once: Telnyx
ignores a command whose ``command_id`` it has seen for that call.

The SDK is imported when the first client is made (it takes a few seconds), so
a server without an API key never loads it.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

COMMAND_TIMEOUT = 5.0
LOOKUP_TIMEOUT = 2.0
# What a speak command carries in client_state so that its call.speak.ended hangs up.
HANG_UP_AFTER_SPEAKING = base64.b64encode(b"voxflow:hangup-after-speak").decode()


class TelnyxApiError(Exception):
    """Telnyx refused a command, or could not be reached."""


@dataclass(frozen=True)
class NumberFacts:
    """What Number Lookup says about a caller's number (empty when it does not know)."""

    carrier: str = ""
    location: str = ""  # "City, ST" (from portability: the LERG locality and state)

    def variables(self) -> dict[str, str]:
        values = {}
        if self.carrier:
            values["caller_carrier"] = self.carrier
        if self.location:
            values["caller_location"] = self.location
        return values


class TelnyxApi:
    def __init__(self, api_key: str, base_url: str | None = None) -> None:
        self._api_key = api_key
        self._base_url = base_url
        self._client: Any = None
        self._lock = asyncio.Lock()

    async def client(self) -> Any:
        async with self._lock:
            if self._client is None:
                self._client = await asyncio.to_thread(self._make)
        return self._client

    def _make(self) -> Any:
        from telnyx import AsyncTelnyx

        # No retries from the SDK: the webhook or its redelivery decides what to retry.
        return AsyncTelnyx(
            api_key=self._api_key, base_url=self._base_url, max_retries=0, timeout=COMMAND_TIMEOUT
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

    async def _command(self, what: str, call_control_id: str, send: Any) -> None:
        from telnyx import APIError

        try:
            await send
        except APIError as error:
            raise TelnyxApiError(
                f"Telnyx refused '{what}' for the call {call_control_id}: {_problem(error)}"
            ) from None
        except Exception as error:  # httpx and the SDK's own errors: network, timeouts
            raise TelnyxApiError(
                f"'{what}' for the call {call_control_id} did not reach Telnyx: {error}"
            ) from None

    async def answer_and_bridge(
        self,
        call_control_id: str,
        sip_uri: str,
        *,
        command_prefix: str,
        username: str | None = None,
        password: str | None = None,
        record: bool = False,
    ) -> None:
        """Answer the call, then transfer it to LiveKit SIP (the voxflow agent's room)."""
        actions = (await self.client()).calls.actions
        answer: dict[str, Any] = {"command_id": f"{command_prefix}-answer"}
        if record:
            answer.update(record="record-from-answer", record_format="mp3")
        await self._command("answer", call_control_id, actions.answer(call_control_id, **answer))
        transfer: dict[str, Any] = {"to": sip_uri, "command_id": f"{command_prefix}-transfer"}
        if username and password:
            transfer.update(sip_auth_username=username, sip_auth_password=password)
        await self._command("transfer", call_control_id, actions.transfer(call_control_id, **transfer))

    async def reject(self, call_control_id: str, *, command_prefix: str) -> None:
        actions = (await self.client()).calls.actions
        await self._command(
            "reject",
            call_control_id,
            actions.reject(call_control_id, cause="CALL_REJECTED", command_id=f"{command_prefix}-reject"),
        )

    async def say_and_hang_up(
        self, call_control_id: str, message: str, language: str | None, *, command_prefix: str
    ) -> None:
        """Answer, say ``message``; its call.speak.ended (with our client_state) hangs up."""
        actions = (await self.client()).calls.actions
        await self._command(
            "answer", call_control_id, actions.answer(call_control_id, command_id=f"{command_prefix}-answer")
        )
        await self._command(
            "speak",
            call_control_id,
            actions.speak(
                call_control_id,
                payload=message,
                voice="female",
                language=language or "en-US",
                client_state=HANG_UP_AFTER_SPEAKING,
                command_id=f"{command_prefix}-speak",
            ),
        )

    async def hang_up(self, call_control_id: str, *, command_prefix: str) -> None:
        actions = (await self.client()).calls.actions
        await self._command(
            "hangup", call_control_id, actions.hangup(call_control_id, command_id=f"{command_prefix}-hangup")
        )

    async def look_up(self, number: str, timeout: float = LOOKUP_TIMEOUT) -> NumberFacts:
        """Carrier and location of ``number`` (Number Lookup, ``type=carrier``)."""
        from telnyx import APIError

        client = await self.client()
        try:
            response = await client.number_lookup.retrieve(number, type="carrier", timeout=timeout)
        except APIError as error:
            raise TelnyxApiError(f"Number Lookup of {number}: {_problem(error)}") from None
        except Exception as error:
            raise TelnyxApiError(f"Number Lookup of {number} did not reach Telnyx: {error}") from None
        data = response.data
        if data is None:
            return NumberFacts()
        carrier = ""
        if data.carrier is not None:
            carrier = (data.carrier.name or data.carrier.normalized_carrier or "").strip()
        location = ""
        portability = data.portability
        if portability is not None:
            city = (portability.city or "").strip()
            if city.isupper():
                city = city.title()  # the LERG writes WAUKEGAN
            state = (portability.state or "").strip()
            location = ", ".join(part for part in (city, state) if part)
        return NumberFacts(carrier=carrier, location=location)


def _problem(error: Any) -> str:
    """Telnyx's own words from an error response ({"errors": [{"title", "detail"}]})."""
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            return str(first.get("detail") or first.get("title") or error)
    status = getattr(error, "status_code", None)
    return f"HTTP {status}" if status else str(error)
