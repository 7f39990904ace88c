"""What the agent does to the call itself, beyond speaking: transfer it, hang it up.

The bus agent asks a :class:`CallControl`; on a phone call that is LiveKit
(engine.agent.livekit_control: SIP transfer, deleting the room), on the audio
harness it is :class:`LocalCallControl`, which only remembers what it was
asked. A failure is a :class:`CallControlError` whose message is said plainly
on the bus (``error:transfer``) and shown on the call record.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol

_PHONE = re.compile(r"^\+?[0-9][0-9 ().-]{2,30}$")


class CallControlError(Exception):
    """Transferring or hanging up failed; the message says why, for a person."""


class CallControl(Protocol):
    async def transfer(self, destination: str) -> None:
        """Hand the caller to ``destination`` (tel: or sip: URI); raises CallControlError."""
        ...

    async def hangup(self, reason: str) -> None:
        """End the call for everyone in it."""
        ...


def transfer_uri(destination: str) -> str:
    """The SIP REFER target for a flow's destination.

    ``+15550001111`` (or ``tel:+1...``) becomes ``tel:+15550001111``; ``sip:`` and
    ``sips:`` URIs are kept. Anything else raises CallControlError.
    """
    text = destination.strip()
    lowered = text.lower()
    if lowered.startswith(("sip:", "sips:")) and "@" in text:
        return text
    number = text[4:] if lowered.startswith("tel:") else text
    if _PHONE.match(number):
        digits = re.sub(r"[ ().-]", "", number)
        return f"tel:{digits}"
    raise CallControlError(
        f"cannot transfer to '{destination}': write a phone number in international form "
        "(+15550001111) or a SIP address (sip:agent@example.com)"
    )


class LocalCallControl:
    """For the audio harness: transfers and hang-ups succeed and are remembered.

    Destinations in ``failing`` fail the way a busy line does.
    """

    def __init__(self, failing: Iterable[str] = ()) -> None:
        self.failing = frozenset(failing)
        self.transfers: list[str] = []
        self.hung_up: str | None = None

    async def transfer(self, destination: str) -> None:
        uri = transfer_uri(destination)
        if destination in self.failing or uri in self.failing:
            raise CallControlError(f"the transfer to {destination} failed: the line is busy")
        self.transfers.append(uri)

    async def hangup(self, reason: str) -> None:
        self.hung_up = reason or "hung up"
