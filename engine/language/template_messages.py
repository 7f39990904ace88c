"""Template and condition problems, said in words a flow author understands.

Jinja's parser speaks to programmers ("expected token 'end of print
statement', got 'name'"); these functions look at the text the author wrote
and say what is wrong with it and how to fix it, as engine.language.yaml_messages does
for YAML.
"""

from __future__ import annotations

import re

import jinja2

from engine.core.suggest import did_you_mean
from engine.language.templates import (
    TemplateInfo,
    TemplateProblem,
    environment,
    inspect_expression,
    inspect_template,
)

_PLACEHOLDER = re.compile(r"(?<!\$)\$\{([^{}]*)\}")
_TEMPLATE_HINT = "Write placeholders as ${name}; write $${ for a dollar sign."
# Jinja's parser messages → plain words (first match wins).
_JINJA_WORDS = [
    (
        r"got 'end of print statement'|unexpected 'end of template'|unexpected '\}'",
        "something is missing at the end",
    ),
    (r"unexpected char (.+?) at \d+", r"the character \1 is not allowed there"),
    (r"expected token '[^']*', got '([^']*)'", r"'\1' is not expected there"),
    (r"unexpected '(.+?)'", r"'\1' is not expected there"),
    (r"expected name or number", "a name is missing after a '.'"),
]


_TOKEN_WORDS = {"'integer'": "a number", "'float'": "a number", "'string'": "a text in quotes"}


def _plain(problem: TemplateProblem) -> str:
    reason = str(problem).split("cannot be read: ", 1)[-1].rstrip(".")
    for pattern, words in _JINJA_WORDS:
        if re.search(pattern, reason):
            reason = re.sub(f".*(?:{pattern}).*", words, reason, count=1)
            break
    for token, words in _TOKEN_WORDS.items():
        reason = reason.replace(token, words)
    return reason


def template_variables(text: str, condition: bool) -> frozenset[str]:
    """The variables a template or condition reads; TemplateProblem if it does not parse."""
    return template_info(text, condition).variables


def template_info(text: str, condition: bool) -> TemplateInfo:
    """What a template or condition reads (variables and their fields); TemplateProblem if it
    does not parse."""
    try:
        return (inspect_expression if condition else inspect_template)(text)
    except jinja2.TemplateError as exc:  # e.g. "No filter named 'int_'." from the inspection
        match = re.match(r"No (filter|test) named '([^']*)'", exc.message or "")
        if not match:
            raise TemplateProblem(f"this cannot be read: {exc.message}") from None
        kind, name = match.groups()
        known = environment().filters if kind == "filter" else environment().tests
        suggestion = did_you_mean(name, known)
        raise TemplateProblem(
            f"there is no {kind} named '{name}'{' (' + suggestion + ')' if suggestion else ''}"
        ) from None


def _unknown_name(problem: TemplateProblem) -> tuple[str, str] | None:
    """(words, hint) for "there is no filter named 'titel' (did you mean 'title'?)"."""
    match = re.match(
        r"there is no (filter|test) named '([^']*)'(?: \(did you mean '([^']*)'\?\))?", str(problem)
    )
    if not match:
        return None
    kind, name, suggestion = match.groups()
    hint = f"Did you mean '{suggestion}'?" if suggestion else f"Check the spelling of the {kind}."
    return f"a {kind} '{name}' that does not exist.", hint


def explain_template(text: str, problem: TemplateProblem) -> tuple[str, str]:
    """(message, hint) for a text whose ${...} placeholders do not parse."""
    if "not closed" in str(problem) or re.search(r"(?<!\$)\$\{[^}]*(\$\{|$)", text):
        return "a '${' is not closed: every '${' needs a '}' after the variable name.", _TEMPLATE_HINT
    for match in _PLACEHOLDER.finditer(text):
        try:
            template_variables(match.group(), condition=False)
        except TemplateProblem as own:
            shown, words = match.group(), match.group(1).split()
            if not words:
                return (
                    f"the placeholder '{shown}' is empty.",
                    "Put a variable name inside it, e.g. ${caller_name}; write $${ for a dollar sign.",
                )
            if len(words) > 1 and all(re.fullmatch(r"[A-Za-z_][\w.]*", w) for w in words):
                return (
                    f"the placeholder '{shown}' has a space in the variable name.",
                    f"Variable names have no spaces: did you mean ${{{'_'.join(words)}}}?",
                )
            unknown = _unknown_name(own)
            if unknown:
                return f"the placeholder '{shown}' uses {unknown[0]}", unknown[1]
            return f"the placeholder '{shown}' cannot be read: {_plain(own)}.", _TEMPLATE_HINT
    return f"a ${{...}} placeholder here cannot be read: {_plain(problem)}.", _TEMPLATE_HINT


def explain_condition(expression: str, problem: TemplateProblem) -> tuple[str, str]:
    """(message, hint) for an ``if:`` condition that does not parse."""
    if "${" in expression:
        fixed = re.sub(r"\$\{\s*(.*?)\s*\}", r"\1", expression)
        return ("conditions are written without ${ }.", f"Write it as: if: {fixed}")
    if re.search(r"=>|=<", expression):
        hint = "Write >= for 'at least' and <= for 'at most'."
    elif re.search(r"(?<![=!<>])=(?!=)", expression):
        hint = "To compare two values write == (two equals signs), e.g. balance == 5."
    elif "&&" in expression or "||" in expression:
        hint = "Write 'and' and 'or' instead of && and ||."
    elif re.match(r"\s*if\b", expression):
        hint = "Leave out the word 'if': write only the condition, e.g. balance > 100."
    else:
        hint = (
            'Write a condition such as balance > 100 or menu.key == "1"; join conditions '
            "with 'and' or 'or', and put text in quotes."
        )
    unknown = _unknown_name(problem)
    if unknown:
        return f"this condition uses {unknown[0]}", unknown[1]
    reason = _plain(problem)
    if expression.count("(") > expression.count(")") and "missing at the end" in reason:
        reason = "a '(' is not closed"
    elif reason == "')' is not expected there" and expression.count(")") <= expression.count("("):
        reason = "something is missing at the end"  # the ')' is our own, around the condition
    return f"this condition cannot be read: {reason}.", hint


def problem_offset(text: str) -> int | None:
    """Where in ``text`` its first unreadable ``${...}`` starts (None: nowhere in particular)."""
    unclosed = re.search(r"(?<!\$)\$\{[^}]*(?=\$\{|$)", text)
    if unclosed:
        return unclosed.start()
    for match in _PLACEHOLDER.finditer(text):
        try:
            template_variables(match.group(), condition=False)
        except TemplateProblem:
            return match.start()
    return None
