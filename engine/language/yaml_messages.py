"""PyYAML and libyaml parse errors, said in words a flow author understands."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import yaml

from engine.core.errors import Diagnostic

_LIST_ITEM = (
    "a list item ('- ...') is not lined up with the other items of its list.",
    "Indent every '- ' of one list by the same number of spaces.",
)
_TOO_FAR = "this line is indented more than the line above it."
# (words in the parser's message, what we tell the user, how to fix it).
# Both the pure-Python parser's and libyaml's phrasings are covered.
_EXPLANATIONS: list[tuple[tuple[str, ...], str, str]] = [
    (
        ("mapping values are not allowed",),
        "there is a ':' where YAML did not expect a new 'name: value'.",
        "Usually this line is indented more than it should be, or a text containing "
        "': ' needs quotes around it.",
    ),
    (
        ("could not find expected ':'",),
        "this line has no ':' after its name.",
        "Write 'name: value', with a space after the ':', or check that this line lines "
        "up with the ones above it.",
    ),
    (
        ("did not find expected '-' indicator", "expected <block end>, but found '-'"),
        *_LIST_ITEM,
    ),
    (
        ("did not find expected key", "expected <block end>"),
        "this line does not line up with the lines above it.",
        "Check the indentation: entries of the same mapping must start in the same column.",
    ),
    (
        ("found unexpected end of stream",),
        "a quote was opened and never closed.",
        "Add the closing quote (\" or ') at the end of the text.",
    ),
    (
        ("found a tab character",),
        "this line is indented with a tab; YAML only allows spaces for indentation.",
        "Replace the tab with spaces.",
    ),
    (
        ("found character that cannot start any token", "cannot start any token"),
        "this line has a character YAML cannot read here (often a tab or a stray '@' or '`').",
        "Use spaces for indentation, and put text that starts with '@' or '`' in quotes.",
    ),
    (
        ("found undefined alias",),
        "this '*name' refers to an anchor '&name' that does not exist.",
        "A value starting with '*' is a YAML reference; to write text that starts with "
        "'*', put it in quotes.",
    ),
    (
        ("while scanning an anchor", "while scanning an alias"),
        "a value starts with '&' or '*', which YAML reads as an anchor or a reference.",
        "Put the text in quotes.",
    ),
    (
        ("while scanning a directive", "directive"),
        "a line starts with '%', which YAML reserves for directives.",
        "Put the text in quotes, or remove the line.",
    ),
    (
        ("while scanning a block scalar",),
        "after '|' or '>' nothing may follow on the same line.",
        "Start the text on the next line, indented under the name.",
    ),
    (
        ("<document start>",),
        "a line with '...' ends the YAML document here, but more follows.",
        "Remove the line with '...'.",
    ),
    (
        ("block sequence entries are not allowed",),
        "a list item ('- ') starts on the same line as its name.",
        "Put the '- ' items on the lines below, indented under the name.",
    ),
    (
        ("did not find expected node content", "expected the node content"),
        "a value is missing or starts with a character YAML does not allow there.",
        "Put the value in quotes.",
    ),
    (
        ("did not find expected ',' or ']'", "expected ',' or ']'"),
        "a list written with [ ] is not closed, or its items are not separated by commas.",
        "Check the brackets: [first, second].",
    ),
    (
        ("did not find expected ',' or '}'", "expected ',' or '}'"),
        "a mapping written with { } is not closed, or its entries are not separated by commas.",
        "Check the braces: {name: value, other: value}.",
    ),
    (
        ("found unknown escape character",),
        "a text in double quotes has a backslash that YAML cannot read.",
        "Use single quotes for text with backslashes, or write '\\\\' for one backslash.",
    ),
]


def explain_yaml_error(exc: yaml.MarkedYAMLError, file: str, text: str = "") -> Diagnostic:
    """Translate a parser error into a Diagnostic at the line the parser stopped.

    With the file's ``text`` the explanation can look at the offending line
    (is a ':' inside unquoted text, or is the line indented too far?).
    """
    raw = " ".join(part for part in (exc.context, exc.problem) if part)
    mark = exc.problem_mark or exc.context_mark
    if (
        exc.context_mark is not None
        and exc.problem
        and ("end of stream" in exc.problem or "could not find expected ':'" in exc.problem)
    ):
        # Point at the opening quote, or at the line that has no ':', not at
        # the place further down where the parser gave up.
        mark = exc.context_mark
    line = mark.line + 1 if mark is not None else 0
    column = mark.column + 1 if mark is not None else 0
    lines = text.splitlines()
    if text and line == 0:
        line, column = 1, 1
    source = lines[line - 1] if 0 < line <= len(lines) else ""
    for needles, message, hint in _EXPLANATIONS:
        if any(needle in raw for needle in needles):
            message, hint = _refine(needles[0], message, hint, source, column, lines, line)
            if message == _TOO_FAR:
                column = len(source) - len(source.lstrip(" ")) + 1  # where the line starts
            return Diagnostic(file, line, column, "", message, hint, code="yaml-syntax")
    return Diagnostic(
        file,
        line,
        column,
        "",
        f"this is not valid YAML ({raw}).",
        "Check the indentation and the quotes on this line and the line above.",
        code="yaml-syntax",
    )


@dataclass(frozen=True)
class _Spot:
    """The offending line, as the refiners below read it."""

    source: str
    column: int
    indent: int
    before: str  # the line up to the column YAML pointed at
    expected: int | None  # the column the lines above start in
    columns: str  # "this line starts in column 5, the ones above it in column 3." or ""
    message: str


def _refine_colon_in_value(spot: _Spot) -> tuple[str, str] | None:
    if ": " in spot.before:
        key, _, value = spot.source.strip().removeprefix("- ").partition(": ")
        value = value.replace('"', '\\"')
        return (
            "this text contains ': ', which YAML reads as the start of a new 'name: value'.",
            f'Put the whole text in quotes: {key}: "{value}"',
        )
    if spot.expected is not None and spot.indent > spot.expected:
        return _TOO_FAR, f"Start it in the same column as the lines above: {spot.columns}"
    return None


def _refine_missing_colon(spot: _Spot) -> tuple[str, str] | None:
    glued = re.match(r"^([\w-]+):(\S.*)$", spot.source.strip())
    if glued:
        return (
            f"there is no space after the ':' of '{glued.group(1)}'.",
            f"Write '{glued.group(1)}: {glued.group(2)}' (YAML needs a space after the ':').",
        )
    words = spot.source.strip().split(None, 1)
    if len(words) == 2 and re.fullmatch(r"[\w-]+", words[0]):
        return spot.message, f"Write '{words[0]}: {words[1]}'."
    return None


def _refine_no_key(spot: _Spot) -> tuple[str, str] | None:
    if spot.column - 1 > spot.indent and spot.before.rstrip()[-1:] in ("'", '"', "]", "}"):
        return (
            "there is more text after the closing quote or bracket on this line.",
            "If the text itself contains a quote, put it in the other kind of quotes "
            "(\"it's\"), or write the quote twice inside single quotes ('it''s').",
        )
    if spot.source.lstrip().startswith("- "):
        return _LIST_ITEM
    if spot.columns:
        return spot.message, f"Lines that belong together start in the same column: {spot.columns}"
    return None


def _refine_alias(spot: _Spot) -> tuple[str, str] | None:
    name = re.match(r"\*([^\s,\]}]*)", spot.source[max(0, spot.column - 1) :])
    if name is None:
        return None
    return (
        f"'*{name.group(1)}' refers to an anchor '&{name.group(1)}' that does not exist.",
        f"A value starting with '*' is a YAML reference; to write it as text, put it "
        f'in quotes: "*{name.group(1)}".',
    )


def _refine_bad_start(spot: _Spot) -> tuple[str, str] | None:
    char = spot.source[spot.column - 1 : spot.column]
    if char in ("@", "`"):
        return f"a value cannot start with '{char}' in YAML.", "Put the text in quotes."
    return None


# YAML's problem (the start of its message) → what the offending line may show went wrong.
_REFINERS: dict[str, Callable[[_Spot], tuple[str, str] | None]] = {
    "mapping values are not allowed": _refine_colon_in_value,
    "could not find expected ':'": _refine_missing_colon,
    "did not find expected key": _refine_no_key,
    "found undefined alias": _refine_alias,
    "found character that cannot start any token": _refine_bad_start,
}


def _refine(
    kind: str, message: str, hint: str, source: str, column: int, lines: list[str], line: int
) -> tuple[str, str]:
    """A sharper message when the offending line shows what went wrong."""
    refiner = _REFINERS.get(kind)
    if refiner is None or not source.strip():
        return message, hint
    indent = len(source) - len(source.lstrip(" "))
    expected = _sibling_indent(lines, line, indent)
    columns = (
        f"this line starts in column {indent + 1}, the ones above it in column {expected + 1}."
        if expected is not None
        else ""
    )
    spot = _Spot(source, column, indent, source[: max(0, column - 1)], expected, columns, message)
    return refiner(spot) or (message, hint)


def _sibling_indent(lines: list[str], line: int, indent: int) -> int | None:
    """The column (0-based) where the entries just above ``line`` start.

    Walks up from the line: if the nearest line with content is indented less,
    that is the line this one should line up with; otherwise the smallest
    indentation seen before reaching a line indented less than this one (the
    parent) is where this line's siblings start.
    """
    smallest: int | None = None
    for number in range(min(line, len(lines) + 1) - 2, -1, -1):
        text = lines[number]
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            continue
        here = len(text) - len(text.lstrip(" "))
        if here < indent:
            return here if smallest is None else smallest
        smallest = here if smallest is None else min(smallest, here)
    return smallest
