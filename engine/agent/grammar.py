"""Expected phrases → a JSGF grammar that pocketsphinx can decode against.

A listen or menu node knows what callers will say ("balance", "my balance",
"agent"). Given that list, pocketsphinx is accurate; without it, its
free-form language model mostly is not. A phrase is reduced to the words a
pronunciation dictionary can have (lower case, letters and apostrophes,
digits spelled out), so "Check my balance!" and "press 2" still work.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

_DIGITS = {
    "0": "zero",
    "1": "one",
    "2": "two",
    "3": "three",
    "4": "four",
    "5": "five",
    "6": "six",
    "7": "seven",
    "8": "eight",
    "9": "nine",
}
_NOT_WORD = re.compile(r"[^a-z0-9']+")


def phrase_words(phrase: str) -> tuple[str, ...]:
    """The dictionary words of ``phrase``: ``"Press 2, please!"`` → ``("press", "two", "please")``."""
    words: list[str] = []
    for token in _NOT_WORD.sub(" ", phrase.lower().replace("’", "'")).split():
        token = token.strip("'")
        if token.isdigit():
            words.extend(_DIGITS[digit] for digit in token)
        elif token:
            words.append(token)
    return tuple(words)


@dataclass(frozen=True)
class Grammar:
    """A set of phrases, each with the words it decodes to.

    ``phrases`` maps the words of a phrase to the phrase as the flow wrote it,
    so a recognition can be reported in the flow's own spelling. ``skipped``
    lists phrases left out because a word of theirs has no pronunciation.
    """

    phrases: dict[tuple[str, ...], str]
    skipped: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """A stable name for this grammar's search (same phrases, same name)."""
        return "g" + hashlib.sha1(self.jsgf().encode()).hexdigest()[:16]

    def jsgf(self) -> str:
        alternatives = " | ".join(" ".join(words) for words in sorted(self.phrases))
        return f"#JSGF V1.0;\ngrammar expected;\npublic <phrase> = {alternatives};\n"

    def phrase_for(self, words: Iterable[str]) -> str | None:
        """The flow's phrase if ``words`` are exactly one of the grammar's phrases."""
        return self.phrases.get(tuple(words))


def build_grammar(phrases: Iterable[str], known: Callable[[str], bool]) -> Grammar | None:
    """The grammar of ``phrases`` whose words are all ``known``; None if none is left."""
    kept: dict[tuple[str, ...], str] = {}
    skipped: list[str] = []
    for phrase in phrases:
        words = phrase_words(phrase)
        if not words:
            continue
        if all(known(word) for word in words):
            kept.setdefault(words, phrase)
        else:
            skipped.append(phrase)
    if not kept:
        return None
    return Grammar(kept, tuple(skipped))
