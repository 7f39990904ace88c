"""'Did you mean ...?' for misspelled names."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate most like ``word``, if any is close enough to be a likely typo."""
    options = sorted(set(candidates))
    lowered = {option.lower(): option for option in options}
    if word.lower() in lowered:
        return lowered[word.lower()]
    matches = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return matches[0] if matches else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``"did you mean 'transfer'?"``, or ``""`` when nothing is close."""
    match = closest(word, candidates)
    return f"did you mean '{match}'?" if match else ""


def as_sentence(text: str) -> str:
    """Capitalise the first letter only: str.capitalize would turn 'GET' into 'get'."""
    return text[:1].upper() + text[1:]


def quoted_list(names: Iterable[str], limit: int = 12) -> str:
    """``'a', 'b' or 'c'`` (shortened with '...' past ``limit``)."""
    items = [f"'{name}'" for name in names]
    if len(items) > limit:
        items = items[:limit] + ["..."]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]
