"""What a carrier's numbers look like to voxflow, and the protocol each carrier implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

CARRIERS = ("telnyx", "twilio")


@dataclass(frozen=True)
class AvailableNumber:
    number: str
    region: str = ""  # city and state or region, as the carrier gives them
    monthly_cost: str = ""


@dataclass(frozen=True)
class OwnedNumber:
    number: str
    id: str  # the carrier's id: Telnyx's phone number id, Twilio's PN... sid
    voice_url: str | None  # where the carrier asks what to do with a call, if anywhere
    status: str = ""
    target: str = ""  # a TeXML application's name, for Telnyx


@dataclass(frozen=True)
class Pointing:
    """What :meth:`Carrier.point` did."""

    changed: bool
    actions: tuple[str, ...]


class Carrier(Protocol):
    name: str
    account: str  # the connection (or variables) it was made from, for messages

    def voice_url(self, public_url: str) -> str:
        """The URL on this server the carrier calls for an inbound call."""
        ...

    def check(self) -> str:
        """Call the account's API once; a sentence about the account, or VoxflowError."""
        ...

    def search(self, country: str, area_code: str | None, limit: int) -> list[AvailableNumber]: ...

    def owned(self, number: str | None = None) -> list[OwnedNumber]: ...

    def buy(self, number: str) -> OwnedNumber: ...

    def point(self, owned: OwnedNumber, public_url: str) -> Pointing:
        """Send the number's calls to this server; idempotent."""
        ...

    def release(self, owned: OwnedNumber) -> None: ...
