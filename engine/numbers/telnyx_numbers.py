"""Telnyx numbers through the ``telnyx`` SDK (API v2).

A number reaches voxflow through a TeXML application: voxflow keeps one,
named ``voxflow``, whose voice URL and status callback are this server's
``/webhooks/telnyx/texml``, and assigns numbers to it (a number's
``connection_id`` is the application's id).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import telnyx
from telnyx.types import available_phone_number_list_params

from engine.connections.kinds import TELNYX_API
from engine.core.errors import VoxflowError
from engine.numbers.model import AvailableNumber, OwnedNumber, Pointing

APPLICATION_NAME = "voxflow"
WEBHOOK_PATH = "/webhooks/telnyx/texml"


class TelnyxCarrier:
    name = "telnyx"

    def __init__(
        self,
        api_key: str,
        base_url: str | None = None,
        account: str = "Telnyx",
        application_name: str = APPLICATION_NAME,
    ) -> None:
        self.base_url = (base_url or TELNYX_API).rstrip("/")
        self.account = account
        self.application_name = application_name
        self.client = telnyx.Telnyx(api_key=api_key, base_url=self.base_url, max_retries=1, timeout=30.0)

    def voice_url(self, public_url: str) -> str:
        return public_url.rstrip("/") + WEBHOOK_PATH

    def check(self) -> str:
        with self._speaking("read the account's balance"):
            balance = self.client.balance.retrieve().data
        if balance is None or balance.balance is None:
            return "Telnyx accepted the API key"
        return (f"Telnyx accepted the API key (balance {balance.balance} {balance.currency or ''})").replace(
            " )", ")"
        )

    def search(self, country: str, area_code: str | None, limit: int) -> list[AvailableNumber]:
        wanted: available_phone_number_list_params.Filter = {
            "country_code": country.upper(),
            "limit": limit,
            "features": ["voice"],
        }
        if area_code:
            wanted["national_destination_code"] = area_code
        with self._speaking("search for numbers"):
            found = self.client.available_phone_numbers.list(filter=wanted).data or []
        numbers = []
        for item in found:
            regions: dict[str, str] = {
                str(r.region_type): r.region_name
                for r in item.region_information or []
                if r.region_type and r.region_name
            }
            region = ", ".join(
                v for v in (regions.get("rate_center") or regions.get("location"), regions.get("state")) if v
            )
            cost = item.cost_information
            monthly = f"{cost.monthly_cost} {cost.currency}" if cost and cost.monthly_cost else ""
            if item.phone_number:
                numbers.append(AvailableNumber(item.phone_number, region, monthly))
        return numbers

    def owned(self, number: str | None = None) -> list[OwnedNumber]:
        with self._speaking("list the account's numbers"):
            applications = {a.id: a for a in self.client.texml_applications.list() if a.id}
            numbers = list(
                self.client.phone_numbers.list(filter={"phone_number": number}, page_size=250)
                if number
                else self.client.phone_numbers.list(page_size=250)
            )
        owned = []
        for item in numbers:
            if number and item.phone_number != number:
                continue
            application = applications.get(item.connection_id or "")
            owned.append(
                OwnedNumber(
                    number=item.phone_number,
                    id=item.id,
                    voice_url=application.voice_url if application else None,
                    status=str(item.status or ""),
                    target=(
                        f"TeXML application '{application.friendly_name}'"
                        if application
                        else f"connection {item.connection_name or item.connection_id}"
                        if item.connection_id
                        else ""
                    ),
                )
            )
        return owned

    def buy(self, number: str) -> OwnedNumber:
        with self._speaking(f"order {number}"):
            order = self.client.number_orders.create(
                phone_numbers=[{"phone_number": number}], customer_reference="voxflow"
            ).data
        status = order.status if order else None
        if status == "failure":
            raise VoxflowError(
                f"Telnyx did not sell {number} (the order failed): it may have "
                "been taken meanwhile; search again."
            )
        bought = self.owned(number)
        if bought:
            return bought[0]
        # Orders can take a moment; the number shows once the order is done.
        return OwnedNumber(number, "", None, status=f"order {status or 'pending'}")

    def point(self, owned: OwnedNumber, public_url: str) -> Pointing:
        url = self.voice_url(public_url)
        actions: list[str] = []
        with self._speaking("set up the TeXML application"):
            mine = [
                a
                for a in self.client.texml_applications.list(filter={"friendly_name": self.application_name})
                if a.friendly_name == self.application_name
            ]
            if not mine:
                application = self.client.texml_applications.create(
                    friendly_name=self.application_name,
                    voice_url=url,
                    voice_method="post",
                    status_callback=url,
                    status_callback_method="post",
                ).data
                if application is None or not application.id:
                    raise VoxflowError(
                        "Telnyx created the TeXML application but did not say its id; run the command again."
                    )
                actions.append(f"created the TeXML application '{self.application_name}' → {url}")
                app_id = application.id
            else:
                application = mine[0]
                app_id = str(application.id)
                if application.voice_url != url or application.status_callback != url:
                    self.client.texml_applications.update(
                        app_id,
                        friendly_name=self.application_name,
                        voice_url=url,
                        voice_method="post",
                        status_callback=url,
                        status_callback_method="post",
                    )
                    actions.append(f"pointed the TeXML application '{self.application_name}' at {url}")
        with self._speaking(f"assign {owned.number} to the TeXML application"):
            current = self.client.phone_numbers.retrieve(owned.id).data
            if current is None or current.connection_id != app_id:
                self.client.phone_numbers.update(owned.id, connection_id=app_id)
                actions.append(f"assigned {owned.number} to the TeXML application '{self.application_name}'")
        return Pointing(bool(actions), tuple(actions))

    def release(self, owned: OwnedNumber) -> None:
        with self._speaking(f"release {owned.number}"):
            self.client.phone_numbers.delete(owned.id)

    @contextmanager
    def _speaking(self, doing: str) -> Iterator[None]:
        """Telnyx's errors, in words: what failed, why, and what to check."""
        try:
            yield
        except telnyx.AuthenticationError:
            raise VoxflowError(
                f"Telnyx refused the API key of {self.account} when asked to {doing}: the key "
                "is wrong or was revoked. Make one in Mission Control → Account Settings → API "
                "Keys and add the connection again."
            ) from None
        except telnyx.PermissionDeniedError as error:
            raise VoxflowError(
                f"the API key of {self.account} has no permission to {doing} ({_detail(error)})."
            ) from None
        except telnyx.APIConnectionError:
            raise VoxflowError(
                f"cannot reach Telnyx at {self.base_url} to {doing}: check the connection's "
                "base_url (normally https://api.telnyx.com/v2) and the network."
            ) from None
        except telnyx.APIStatusError as error:
            raise VoxflowError(f"Telnyx could not {doing}: {_detail(error)} ({error.status_code}).") from None


def _detail(error: telnyx.APIStatusError) -> str:
    body = error.body
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            return str(first.get("detail") or first.get("title") or first)
    return error.message


def telnyx_carrier(values: Callable[[str], str | None], account: str) -> TelnyxCarrier:
    key = values("api_key")
    if not key:
        raise VoxflowError(f"{account} has no Telnyx API key.")
    return TelnyxCarrier(key, values("base_url"), account)
