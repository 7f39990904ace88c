"""Which flow answers a call: dialled number → trigger → flow, business hours, unknown numbers.

Every inbound call gets a :class:`Decision`, never an exception:

- ``run``: start the flow (the trigger's, or its voicemail flow outside hours,
  or the flow configured for unknown numbers);
- ``message``: say something and hang up (outside hours, unknown number);
- ``reject``: refuse the call without answering.

Lookups read the :class:`~engine.server.flow_library.FlowLibrary` as it is at that
moment, so a hot reload changes the answer for the very next call.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

from engine.language.compile import FlowGraph
from engine.language.templates import TemplateProblem, render
from engine.language.triggers import Trigger
from engine.server.flow_library import FlowLibrary

Action = Literal["run", "message", "reject"]
DEFAULT_UNKNOWN_MESSAGE = "Sorry, this number is not in service. Goodbye."
UNAVAILABLE_MESSAGE = "Sorry, we cannot take your call right now. Please call again later."


@dataclass(frozen=True)
class UnknownNumberPolicy:
    """What a call to a number without a trigger gets (VOXFLOW_UNKNOWN_NUMBER...)."""

    action: Literal["reject", "message", "flow"] = "reject"
    message: str = DEFAULT_UNKNOWN_MESSAGE
    flow: str | None = None


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str  # in words, for the call record and the log
    flow: FlowGraph | None = None
    trigger: Trigger | None = None
    message: str = ""
    language: str | None = None


def normalise_number(text: str) -> str:
    """``+15551230000`` from ``sip:+15551230000@host``, ``+1 555 123 0000`` or ``15551230000``."""
    value = text.strip()
    if value.lower().startswith(("sip:", "sips:", "tel:")):
        value = value.split(":", 1)[1].split("@", 1)[0].split(";", 1)[0]
    digits = re.sub(r"[\s().-]", "", value)
    if re.fullmatch(r"\d{7,15}", digits):
        return "+" + digits
    return digits


def route_call(
    library: FlowLibrary,
    called: str,
    caller: str,
    now: dt.datetime,
    unknown: UnknownNumberPolicy,
    carrier: str = "telnyx",
) -> Decision:
    number = normalise_number(called)
    trigger = library.trigger_for(number)
    variables = {"caller_number": caller, "called_number": number}
    if trigger is None:
        return _unknown(library, unknown, f"no trigger for the number {number or '(none)'}", variables)
    if trigger.carrier is not None and trigger.carrier != carrier:
        return _unknown(
            library,
            unknown,
            f"the trigger for {number} takes calls through "
            f"{trigger.carrier}, and this one came through {carrier}",
            variables,
        )
    flow = library.flow(trigger.flow)
    if flow is None:
        return _unknown(
            library,
            unknown,
            f"the flow '{trigger.flow}' of the trigger for {number} is not being "
            "served (its file was deleted or never valid)",
            variables,
        )
    hours = trigger.business_hours
    if hours is not None and not hours.is_open(now):
        message = _render(hours.outside_message, variables)
        reason = "outside business hours"
        if hours.outside_action == "reject":
            return Decision("reject", f"{reason}: rejected", trigger=trigger)
        if hours.outside_action == "voicemail":
            voicemail = library.flow(trigger.voicemail_flow or "")
            if voicemail is not None:
                return Decision(
                    "run",
                    f"{reason}: voicemail",
                    flow=voicemail,
                    trigger=trigger,
                    message=message,
                    language=trigger.language,
                )
            reason += f" (the voicemail flow '{trigger.voicemail_flow}' is not being served)"
        return Decision(
            "message", f"{reason}: message", trigger=trigger, message=message, language=trigger.language
        )
    return Decision("run", f"trigger for {number}", flow=flow, trigger=trigger, language=trigger.language)


def _unknown(
    library: FlowLibrary, policy: UnknownNumberPolicy, reason: str, variables: dict[str, str]
) -> Decision:
    if policy.action == "flow" and policy.flow:
        flow = library.flow(policy.flow)
        if flow is not None:
            return Decision("run", f"{reason}: the flow '{policy.flow}' for unknown numbers", flow=flow)
        return Decision(
            "message",
            f"{reason}; the flow '{policy.flow}' for unknown numbers is not being served",
            message=UNAVAILABLE_MESSAGE,
        )
    if policy.action == "message":
        return Decision("message", f"{reason}: message", message=_render(policy.message, variables))
    return Decision("reject", f"{reason}: rejected")


def _render(text: str, variables: dict[str, str]) -> str:
    try:
        return render(text, variables)
    except TemplateProblem:
        return text  # a message with a broken placeholder is still better said as written
