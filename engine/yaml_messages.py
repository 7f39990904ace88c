"""PyYAML and libyaml parse errors, said in words a flow author understands."""

from __future__ import annotations

import yaml

from engine.errors import Diagnostic

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
        "a line here has no ':' after its name.",
        "Write 'name: value', or check that this line lines up with the ones above it.",
    ),
    (
        ("did not find expected key", "expected <block end>"),
        "this line does not line up with the lines above it.",
        "Check the indentation: entries of the same mapping must start in the same column.",
    ),
    (
        ("did not find expected '-' indicator", "expected <block end>, but found '-'"),
        "a list item ('- ...') is not lined up with the other items of its list.",
        "Indent every '- ' of one list by the same number of spaces.",
    ),
    (
        ("found unexpected end of stream", "found unexpected end of stream"),
        "a quote was opened and never closed.",
        "Add the closing quote (\" or ') at the end of the text.",
    ),
    (
        ("found character that cannot start any token", "cannot start any token"),
        "this line has a character YAML cannot read here (often a tab or a stray '@' or '`').",
        "Use spaces for indentation, and put text that starts with '@' or '`' in quotes.",
    ),
    (
        ("found undefined alias",),
        "this '*name' refers to an anchor '&name' that does not exist.",
        "Define the anchor first or write the value out.",
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


def explain_yaml_error(exc: yaml.MarkedYAMLError, file: str) -> Diagnostic:
    """Translate a parser error into a Diagnostic at the line the parser stopped."""
    mark = exc.problem_mark or exc.context_mark
    if exc.problem and "end of stream" in exc.problem and exc.context_mark is not None:
        mark = exc.context_mark  # point at the opening quote, not the end of the file
    line = mark.line + 1 if mark is not None else 0
    column = mark.column + 1 if mark is not None else 0
    raw = " ".join(part for part in (exc.context, exc.problem) if part)
    for needles, message, hint in _EXPLANATIONS:
        if any(needle in raw for needle in needles):
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
