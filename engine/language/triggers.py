"""Trigger files: which flow answers a phone number, and when.

A trigger file (under flows/triggers/) binds one number to one flow, with
the call options from the seed: greeting, language, longest call, recording,
voicemail and business hours in the trigger's own time zone.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.core.errors import Diagnostic
from engine.core.suggest import as_sentence, did_you_mean
from engine.language.duration import parse_duration
from engine.language.load import LoadedDocument
from engine.language.schema import trigger_schema
from engine.language.sourcemap import DocPath, format_path
from engine.language.validate import schema_diagnostics

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class BusinessHours:
    timezone: str
    # day name → list of (start minute, end minute) since midnight
    schedule: dict[str, tuple[tuple[int, int], ...]]
    holidays: tuple[str, ...] = ()
    outside_action: str = "message"
    outside_message: str = "We are closed right now. Please call again during business hours."

    def is_open(self, moment: dt.datetime) -> bool:
        """Whether ``moment`` (timezone-aware) falls within opening hours."""
        local = moment.astimezone(zoneinfo.ZoneInfo(self.timezone))
        if local.date().isoformat() in self.holidays:
            return False
        minute = local.hour * 60 + local.minute
        ranges = self.schedule.get(DAYS[local.weekday()], ())
        return any(start <= minute < end for start, end in ranges)


@dataclass(frozen=True)
class Trigger:
    number: str
    flow: str
    source: str
    greeting_message: str | None = None
    language: str | None = None
    max_call_duration: float | None = None
    enable_recording: bool = False
    voicemail_enabled: bool = False
    voicemail_flow: str | None = None
    business_hours: BusinessHours | None = None
    carrier: str | None = None  # only calls through this carrier (telnyx, twilio); None: any
    extra: dict[str, Any] = field(default_factory=dict)


def _timezone_hint(name: str) -> str:
    """ "Did you mean 'Europe/London'?" for a misspelt zone, else how zones are named."""
    try:
        zones = zoneinfo.available_timezones()
    except OSError:
        zones = set()
    by_case = {zone.lower(): zone for zone in zones}
    suggestion = (
        f"did you mean '{by_case[name.lower()]}'?"
        if name.lower() in by_case
        else did_you_mean(name, zones)
        if len(name) < 100
        else ""
    )
    usage = "Use a name from the time zone database, such as America/New_York or Europe/London."
    return f"{as_sentence(suggestion)} {usage}" if suggestion else usage


def trigger_diagnostics(document: LoadedDocument, known_flows: set[str] | None = None) -> list[Diagnostic]:
    """Schema problems, then the checks the schema cannot make."""
    diagnostics = schema_diagnostics(document, trigger_schema(), kind="trigger")
    if diagnostics or not isinstance(document.data, Mapping):
        return diagnostics
    data = document.data

    def report(path: DocPath, message: str, hint: str, code: str) -> None:
        line, column = document.source_map.locate(path)
        diagnostics.append(
            Diagnostic(document.file, line, column, format_path(path), message, hint, code=code)
        )

    for field_name in ("flow", "voicemail_flow"):
        flow_id = data.get(field_name)
        if known_flows is not None and flow_id is not None and flow_id not in known_flows:
            hint = as_sentence(did_you_mean(flow_id, known_flows)) or (
                "Use the 'flow:' name written at the top of a flow file."
            )
            report((field_name,), f"no flow named '{flow_id}'.", hint, "unknown-flow")
    hours = data.get("business_hours")
    if isinstance(hours, Mapping):
        try:
            zoneinfo.ZoneInfo(hours["timezone"])
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            report(
                ("business_hours", "timezone"),
                f"'{hours['timezone']}' is not a time zone.",
                _timezone_hint(str(hours["timezone"])),
                "bad-timezone",
            )
        for day, ranges in (hours.get("schedule") or {}).items():
            for index, text in enumerate(ranges):
                start, end = _minutes(text)
                if start >= end:
                    report(
                        ("business_hours", "schedule", day, index),
                        f"'{text}' closes before it opens.",
                        "Write the opening time first, e.g. 09:00-17:00.",
                        "bad-hours",
                    )
        if (hours.get("outside_hours") or {}).get("action") == "voicemail" and not data.get("voicemail_flow"):
            report(
                ("business_hours", "outside_hours", "action"),
                "outside hours calls go to voicemail, but no voicemail_flow is set.",
                "Add 'voicemail_flow: <flow name>' to this trigger.",
                "missing-voicemail-flow",
            )
    return diagnostics


def _minutes(text: str) -> tuple[int, int]:
    start, end = text.split("-")
    return _minute(start), _minute(end)


def _minute(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def build_trigger(document: LoadedDocument) -> Trigger:
    """A trigger from a document that passed :func:`trigger_diagnostics`."""
    data = document.data
    hours = data.get("business_hours")
    business_hours = None
    if hours:
        outside = hours.get("outside_hours") or {}
        business_hours = BusinessHours(
            timezone=hours["timezone"],
            schedule={
                day: tuple(_minutes(text) for text in ranges)
                for day, ranges in (hours.get("schedule") or {}).items()
            },
            holidays=tuple(hours.get("holidays") or ()),
            outside_action=outside.get("action", "message"),
            **({"outside_message": outside["message"]} if "message" in outside else {}),
        )
    duration = data.get("max_call_duration")
    return Trigger(
        number=data["number"],
        flow=data["flow"],
        source=document.file,
        greeting_message=data.get("greeting_message"),
        language=data.get("language"),
        max_call_duration=parse_duration(duration) if duration is not None else None,
        enable_recording=bool(data.get("enable_recording", False)),
        voicemail_enabled=bool(data.get("voicemail_enabled", False)),
        voicemail_flow=data.get("voicemail_flow"),
        business_hours=business_hours,
        carrier=data.get("carrier"),
    )
