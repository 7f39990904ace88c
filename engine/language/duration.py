"""Lengths of time as flow authors write them: ``500ms``, ``5s``, ``2m``, ``1h``, ``1h30m``."""

from __future__ import annotations

import re

# Also used by the JSON Schema (schemas/flow.schema.json), so an editor flags
# a bad duration while it is being typed.
DURATION_PATTERN = r"^\s*(\d+(\.\d+)?\s*(ms|s|m|h)\s*)+$"

_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h)")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: str | int | float) -> float:
    """Seconds in ``value``. A bare number is a number of seconds.

    Raises ValueError for text that is not a duration; schema validation has
    rejected such text before this is called on a flow's values.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a length of time")
    if isinstance(value, (int, float)):
        return float(value)
    if not re.fullmatch(DURATION_PATTERN, value):
        raise ValueError(f"{value!r} is not a length of time")
    return sum(float(number) * _SECONDS[unit] for number, unit in _PART.findall(value))
