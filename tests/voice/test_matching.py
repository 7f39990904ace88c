"""Phrase and key matching: case, punctuation and fillers ignored, whole words, longest wins."""

from __future__ import annotations

import pytest

from engine.voice.matching import match_phrases, spoken_key, words

MENU = [
    ["balance", "my balance", "account balance"],
    ["card", "lost card", "stolen card"],
    ["agent", "operator", "human"],
]


@pytest.mark.parametrize(
    "answer, index, phrase",
    [
        ("um, my balance please", 0, "my balance"),
        ("My BALANCE.", 0, "my balance"),
        ("uh... my, um, balance!", 0, "my balance"),
        ("I've lost card", 1, "lost card"),
        ("what's my account balance?", 0, "account balance"),
        ("I need an operator", 2, "operator"),
    ],
)
def test_spoken_answers_match_their_option(answer: str, index: int, phrase: str) -> None:
    match = match_phrases(answer, MENU)
    assert match is not None and (match.index, match.phrase) == (index, phrase)


def test_the_longest_phrase_wins_across_options() -> None:
    choices = [["card"], ["card balance"]]
    match = match_phrases("my card balance", choices)
    assert match is not None and match.index == 1


def test_phrases_match_whole_words_only() -> None:
    yes_no = [["yes", "yeah"], ["no", "nope"]]
    assert match_phrases("I know", yes_no) is None
    assert match_phrases("nobody", yes_no) is None
    assert match_phrases("yesterday", yes_no) is None
    match = match_phrases("no thanks", yes_no)
    assert match is not None and match.index == 1


def test_words_drop_punctuation_apostrophes_and_fillers() -> None:
    assert words("Um, I'd like... my BALANCE, please!") == ("id", "my", "balance")
    assert words("please") == ("please",)  # a phrase made only of fillers keeps them


@pytest.mark.parametrize(
    "answer, key",
    [
        ("one", "1"),
        ("press two", "2"),
        ("option 3", "3"),
        ("Zero.", "0"),
        ("pound", "#"),
        ("um, star", "*"),
        ("my balance", None),
        ("one two", None),
    ],
)
def test_spoken_keys(answer: str, key: str | None) -> None:
    assert spoken_key(answer) == key
