"""Twilio numbers through the ``twilio`` SDK (API 2010-04-01, IncomingPhoneNumbers).

A Twilio number reaches voxflow through its own voice URL and status
callback: ``/webhooks/twilio/voice`` and ``/webhooks/twilio/status`` on this
server, both POST.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from engine.connections.kinds import TWILIO_API
from engine.core.errors import VoxflowError
from engine.numbers.model import AvailableNumber, OwnedNumber, Pointing

VOICE_PATH = "/webhooks/twilio/voice"
STATUS_PATH = "/webhooks/twilio/status"


class TwilioCarrier:
    name = "twilio"

    def __init__(
        self, account_sid: str, auth_token: str, base_url: str | None = None, account: str = "Twilio"
    ) -> None:
        self.account_sid = account_sid
        self.base_url = (base_url or TWILIO_API).rstrip("/")
        self.account = account
        self.client = Client(account_sid, auth_token, http_client=TwilioHttpClient(timeout=30))
        self.client.api.base_url = self.base_url  # the SDK's Domain keeps its host here

    def voice_url(self, public_url: str) -> str:
        return public_url.rstrip("/") + VOICE_PATH

    def status_url(self, public_url: str) -> str:
        return public_url.rstrip("/") + STATUS_PATH

    def check(self) -> str:
        with self._speaking("read the account"):
            account = self.client.api.v2010.accounts(self.account_sid).fetch()
        if account.status and account.status != "active":
            raise VoxflowError(
                f"the Twilio account {self.account_sid} of {self.account} is "
                f"{account.status}, not active: calls will not reach it."
            )
        return f"Twilio accepted the credentials (account '{account.friendly_name}')"

    def search(self, country: str, area_code: str | None, limit: int) -> list[AvailableNumber]:
        with self._speaking("search for numbers"):
            local = self.client.available_phone_numbers(country.upper()).local
            found = (
                local.list(area_code=int(area_code), voice_enabled=True, limit=limit)
                if area_code
                else local.list(voice_enabled=True, limit=limit)
            )
        return [
            AvailableNumber(
                item.phone_number, ", ".join(v for v in (item.locality or item.rate_center, item.region) if v)
            )
            for item in found
            if item.phone_number
        ]

    def owned(self, number: str | None = None) -> list[OwnedNumber]:
        with self._speaking("list the account's numbers"):
            found = (
                self.client.incoming_phone_numbers.list(phone_number=number)
                if number
                else self.client.incoming_phone_numbers.list()
            )
        return [
            OwnedNumber(item.phone_number, item.sid, item.voice_url or None, status=str(item.status or ""))
            for item in found
            if not number or item.phone_number == number
        ]

    def buy(self, number: str) -> OwnedNumber:
        with self._speaking(f"buy {number}"):
            item = self.client.incoming_phone_numbers.create(phone_number=number)
        return OwnedNumber(item.phone_number, item.sid, item.voice_url or None, status=str(item.status or ""))

    def point(self, owned: OwnedNumber, public_url: str) -> Pointing:
        voice, status = self.voice_url(public_url), self.status_url(public_url)
        with self._speaking(f"set the voice URL of {owned.number}"):
            current = self.client.incoming_phone_numbers(owned.id).fetch()
            if (
                current.voice_url == voice
                and (current.voice_method or "").upper() == "POST"
                and current.status_callback == status
            ):
                return Pointing(False, ())
            self.client.incoming_phone_numbers(owned.id).update(
                voice_url=voice, voice_method="POST", status_callback=status, status_callback_method="POST"
            )
        return Pointing(
            True, (f"pointed {owned.number}'s voice URL at {voice} and its status callback at {status}",)
        )

    def release(self, owned: OwnedNumber) -> None:
        with self._speaking(f"release {owned.number}"):
            self.client.incoming_phone_numbers(owned.id).delete()

    @contextmanager
    def _speaking(self, doing: str) -> Iterator[None]:
        try:
            try:
                yield
            except TwilioRestException:
                raise
            except TwilioException as error:  # a list page that failed: the response is kept
                raise _as_rest_error(error) from None
        except TwilioRestException as error:
            if error.status == 401:
                raise VoxflowError(
                    f"Twilio refused the Account SID and Auth Token of {self.account} when "
                    f"asked to {doing}: one of them is wrong (the token may have been "
                    "changed). Copy both from the Twilio Console and add the connection "
                    "again."
                ) from None
            if error.status == 403:
                raise VoxflowError(
                    f"the credentials of {self.account} have no permission to {doing} ({error.msg})."
                ) from None
            raise VoxflowError(
                f"Twilio could not {doing}: {error.msg} (HTTP {error.status}"
                + (f", Twilio error {error.code}" if error.code else "")
                + ")."
            ) from None
        except requests.RequestException:
            raise VoxflowError(
                f"cannot reach Twilio at {self.base_url} to {doing}: check the connection's "
                "base_url (normally https://api.twilio.com) and the network."
            ) from None


def _as_rest_error(error: TwilioException) -> TwilioRestException:
    response = error.args[1] if len(error.args) > 1 else None
    status = getattr(response, "status_code", 500)
    try:
        body = json.loads(getattr(response, "text", "") or "{}")
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    return TwilioRestException(status, "", str(body.get("message") or error.args[0]), body.get("code"))


def twilio_carrier(values: Callable[[str], str | None], account: str) -> TwilioCarrier:
    sid, token = values("account_sid"), values("auth_token")
    if not sid or not token:
        raise VoxflowError(f"{account} needs a Twilio Account SID and Auth Token.")
    return TwilioCarrier(sid, token, values("base_url"), account)
