"""Business hours are worked out in the trigger's own time zone."""

from __future__ import annotations

import datetime as dt

from engine.language.triggers import BusinessHours

HOURS = BusinessHours(
    timezone="America/New_York",
    schedule={"monday": ((9 * 60, 17 * 60),), "friday": ((9 * 60, 12 * 60), (13 * 60, 17 * 60))},
    holidays=("2026-12-25",),
)


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def test_open_and_closed_in_local_time() -> None:
    # Monday 2026-11-30 09:30 in New York is 14:30 UTC.
    assert HOURS.is_open(at("2026-11-30T14:30:00+00:00"))
    assert not HOURS.is_open(at("2026-11-30T13:30:00+00:00"))  # 08:30 local
    assert not HOURS.is_open(at("2026-11-30T22:00:00+00:00"))  # 17:00 local: closed


def test_lunch_break_and_closed_days_and_holidays() -> None:
    assert not HOURS.is_open(at("2026-12-04T17:30:00+00:00"))  # Friday 12:30 local
    assert HOURS.is_open(at("2026-12-04T18:30:00+00:00"))  # Friday 13:30 local
    assert not HOURS.is_open(at("2026-12-01T15:00:00+00:00"))  # Tuesday: no hours
    assert not HOURS.is_open(at("2026-12-25T15:00:00+00:00"))  # Christmas, a Friday


def test_a_misspelt_time_zone_gets_a_suggestion() -> None:
    from engine.language.load import load_text
    from engine.language.triggers import trigger_diagnostics

    def problem(zone: str) -> tuple[str, str]:
        text = (
            f"number: '+15550001111'\nflow: main\nbusiness_hours:\n  timezone: {zone}\n"
            "  schedule:\n    monday: ['08:00-18:00']\n"
        )
        found = [
            d for d in trigger_diagnostics(load_text(text, "t.yaml"), {"main"}) if d.code == "bad-timezone"
        ]
        assert len(found) == 1 and found[0].line == 4
        return found[0].message, found[0].hint

    message, hint = problem("Europe/Londn")
    assert message == "'Europe/Londn' is not a time zone."
    assert hint.startswith("Did you mean 'Europe/London'?")
    assert problem("america/new_york")[1].startswith("Did you mean 'America/New_York'?")
    assert problem("Nowhere/At_All")[1].startswith("Use a name from the time zone database")
