"""Matching what a caller said against the phrases a flow expects.

People do not say exactly the phrase: "Um, my balance, please." must match
"my balance". So both sides are reduced to words: lower case, punctuation
and apostrophes gone, filler words dropped. A phrase matches when its words
appear together, in order, as whole words of the answer: "no" matches "no
thanks" but not "know" or "nobody". When several phrases match, the longest
wins ("lost card" over "card"), then the earlier option.

A caller may also say a key: "one", "press 2", "option three", "pound".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

# Words that carry no meaning in an answer to a phone menu. Deliberately
# short: "no", "yes", "okay", "oh" (a spoken zero) are answers, not fillers.
FILLER_WORDS = frozenset(
    {
        "um",
        "umm",
        "uh",
        "uhh",
        "uhm",
        "er",
        "erm",
        "ah",
        "ahh",
        "eh",
        "hmm",
        "hm",
        "mm",
        "mhm",
        "well",
        "like",
        "please",
        "so",
        "just",
    }
)
# Words around a spoken key: "press one", "option 2", "number three".
_KEY_WORDS = frozenset({"press", "option", "number", "key", "the", "pressing", "i", "choose"})
SPOKEN_KEYS = {
    "zero": "0",
    "oh": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "star": "*",
    "asterisk": "*",
    "pound": "#",
    "hash": "#",
}
_APOSTROPHES = re.compile(r"['’`]")
_NOT_WORD = re.compile(r"[^\w]+")


def words(text: str) -> tuple[str, ...]:
    """Lower-case words without punctuation or fillers (a phrase made only of fillers keeps them)."""
    raw = _NOT_WORD.sub(" ", _APOSTROPHES.sub("", text.lower())).split()
    kept = tuple(word for word in raw if word not in FILLER_WORDS)
    return kept or tuple(raw)


def contains(answer: Sequence[str], phrase: Sequence[str]) -> bool:
    """True if ``phrase`` occurs in ``answer`` as consecutive whole words."""
    size = len(phrase)
    if size == 0 or size > len(answer):
        return False
    return any(tuple(answer[i : i + size]) == tuple(phrase) for i in range(len(answer) - size + 1))


@dataclass(frozen=True)
class PhraseMatch:
    """Which choice matched (its index in the list given) and by which phrase."""

    index: int
    phrase: str


def match_phrases(answer: str, choices: Sequence[Sequence[str]]) -> PhraseMatch | None:
    """The choice whose phrase matches ``answer`` best: the longest phrase, then the earliest."""
    said = words(answer)
    best: tuple[int, int, int] | None = None  # (-words, -characters, index)
    found: PhraseMatch | None = None
    for index, phrases in enumerate(choices):
        for phrase in phrases:
            wanted = words(phrase)
            if not contains(said, wanted):
                continue
            rank = (-len(wanted), -len(" ".join(wanted)), index)
            if best is None or rank < best:
                best, found = rank, PhraseMatch(index, phrase)
    return found


def spoken_key(answer: str) -> str | None:
    """The phone key a caller said ("one", "press 2", "pound"), or None."""
    said = [word for word in words(answer) if word not in _KEY_WORDS]
    if len(said) != 1:
        return None
    word = said[0]
    if len(word) == 1 and word in "0123456789":
        return word
    return SPOKEN_KEYS.get(word)
