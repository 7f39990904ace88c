"""The loader: YAML 1.2 scalars, positions of every value, duplicate keys, tabs."""

from __future__ import annotations

import pytest

from engine.core.errors import VoxflowError
from engine.language.load import load_text


def problems(text: str) -> list[str]:
    with pytest.raises(VoxflowError) as caught:
        load_text(text, "f.yaml")
    return [d.one_line() for d in caught.value.diagnostics]


def test_yaml_1_2_scalars_keep_yes_no_dates_and_clock_times_as_text() -> None:
    data = load_text(
        "a: yes\nb: no\nc: on\nd: 2024-01-01\ne: 1:30\nf: 010\ng: true\nh: ~\ni: 0x1f\nj: 1.5\n",
        "f.yaml",
    ).data
    assert data == {
        "a": "yes",
        "b": "no",
        "c": "on",
        "d": "2024-01-01",
        "e": "1:30",
        "f": 10,
        "g": True,
        "h": None,
        "i": 31,
        "j": 1.5,
    }


def test_every_value_and_key_has_a_position() -> None:
    document = load_text("nodes:\n  menu:\n    options:\n      - key: '1'\n        next: a\n", "f")
    source_map = document.source_map
    assert source_map.locate(("nodes", "menu", "options", 0, "next")) == (5, 15)
    assert source_map.locate_key(("nodes", "menu")) == (2, 3)
    # a path that does not exist points at its nearest existing parent
    assert source_map.locate(("nodes", "menu", "prompt")) == (3, 5)


def test_duplicate_keys_are_errors_naming_both_lines() -> None:
    (message,) = problems("nodes:\n  a: 1\n  b: 2\n  a: 3\n")
    assert message.startswith("f.yaml:4:3  nodes.a:")
    assert "'a' appears twice here (first on line 2)" in message


def test_tab_indentation_is_reported_on_each_line() -> None:
    found = problems("nodes:\n\tgreet:\n\t\ttype: end\n")
    assert [m.split()[0] for m in found] == ["f.yaml:2:1", "f.yaml:3:1"]
    assert "tab" in found[0]


def test_tabs_inside_block_text_are_fine() -> None:
    assert load_text("a: |\n  one\n  \ttwo\nb: 1\n", "f").data == {"a": "one\n\ttwo\n", "b": 1}


def test_unclosed_quote_points_at_the_opening_quote() -> None:
    (message,) = problems('a: 1\nb: "hello\nc: 2\n')
    assert message.startswith("f.yaml:2:4")
    assert "quote" in message


def test_two_documents_are_refused() -> None:
    (message,) = problems("a: 1\n---\nb: 2\n")
    assert "more than one YAML document" in message


def test_empty_file() -> None:
    assert "empty" in problems("# only a comment\n")[0]
