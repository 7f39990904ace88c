"""``${...}`` templates and ``if:`` expressions, in a sandboxed Jinja2 environment.

Flow authors write ``Hello ${caller_name | title}!``. We use Jinja2 with
``${`` and ``}`` as its variable delimiters (so Jinja filters work) inside a
:class:`SandboxedEnvironment`, which refuses attribute tricks such as
``${ ''.__class__ }``: a flow file must never reach Python internals.
``$${x}`` is a literal dollar sign followed by the value of ``x`` (so
``$${account.balance}`` says "$42.50"). Jinja's block and comment syntax is
moved out of the way so that ``{%`` or ``{#`` in a prompt is just text.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2 import meta
from jinja2.sandbox import SandboxedEnvironment, SecurityError

# Strings nobody writes in a prompt, so Jinja blocks and comments are disabled.
_BLOCK = ("\x00{%", "%}\x00")
_COMMENT = ("\x00{#", "#}\x00")
_DOLLAR_ESCAPE = re.compile(r"\$\$\{")
# Placeholders and expressions longer than this are refused: a prompt is short.
MAX_TEMPLATE_LENGTH = 20_000


class TemplateProblem(ValueError):
    """A template that cannot be parsed or rendered, said for a flow author."""


@dataclass(frozen=True)
class TemplateInfo:
    """What a template refers to: the top-level variable names it reads."""

    variables: frozenset[str]


@functools.cache
def environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        variable_start_string="${",
        variable_end_string="}",
        block_start_string=_BLOCK[0],
        block_end_string=_BLOCK[1],
        comment_start_string=_COMMENT[0],
        comment_end_string=_COMMENT[1],
        undefined=jinja2.ChainableUndefined,  # ${account.balance} is empty, not a crash
        autoescape=False,
        keep_trailing_newline=True,
    )
    # Logic nodes render inside the Temporal workflow, which must replay
    # exactly: nothing random may be reachable from a flow file.
    env.filters.pop("random", None)
    env.globals.pop("lipsum", None)
    return env


def _to_jinja(text: str) -> str:
    if len(text) > MAX_TEMPLATE_LENGTH:
        raise TemplateProblem(f"this text is longer than {MAX_TEMPLATE_LENGTH} characters.")
    return _DOLLAR_ESCAPE.sub("${ '$' }${", text)


def _explain(exc: jinja2.TemplateSyntaxError, text: str, expression: bool) -> TemplateProblem:
    message = exc.message or "it cannot be read"
    if "unexpected end of template" in message or (
        "expected token 'end of print statement'" in message and "${" in text
    ):
        if text.count("${") > text.count("}"):
            return TemplateProblem(
                "a '${' is not closed: every '${' needs a '}' after the variable name."
            )
    if expression:
        return TemplateProblem(f"this condition cannot be read: {message}.")
    return TemplateProblem(f"a ${{...}} placeholder here cannot be read: {message}.")


@functools.lru_cache(maxsize=4096)
def inspect_template(text: str) -> TemplateInfo:
    """Parse a template; raise :class:`TemplateProblem` if it does not parse."""
    source = _to_jinja(text)
    try:
        tree = environment().parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise _explain(exc, text, expression=False) from None
    return TemplateInfo(frozenset(meta.find_undeclared_variables(tree)))


@functools.lru_cache(maxsize=4096)
def inspect_expression(text: str) -> TemplateInfo:
    """Parse an ``if:`` condition; raise :class:`TemplateProblem` if it does not parse."""
    if "${" in text:
        raise TemplateProblem(
            "conditions are written without ${ }: write 'balance > 100', not '${balance} > 100'."
        )
    try:
        tree = environment().parse("${ (" + _to_jinja(text) + ") }")
    except jinja2.TemplateSyntaxError as exc:
        raise _explain(exc, text, expression=True) from None
    return TemplateInfo(frozenset(meta.find_undeclared_variables(tree)))


@functools.lru_cache(maxsize=4096)
def _compiled_template(text: str) -> jinja2.Template:
    inspect_template(text)
    return environment().from_string(_to_jinja(text))


@functools.lru_cache(maxsize=4096)
def _compiled_expression(text: str) -> Any:
    inspect_expression(text)
    return environment().compile_expression(_to_jinja(text), undefined_to_none=False)


def render(text: str, variables: Mapping[str, Any]) -> str:
    """Fill in a template's placeholders. Errors become :class:`TemplateProblem`."""
    try:
        return _compiled_template(text).render(dict(variables))
    except SecurityError as exc:
        raise TemplateProblem(f"this template tries something that is not allowed: {exc}") from None
    except TemplateProblem:
        raise
    except Exception as exc:  # e.g. a filter applied to the wrong kind of value
        raise TemplateProblem(f"this template could not be filled in: {exc}") from None


def evaluate(expression: str, variables: Mapping[str, Any]) -> bool:
    """Evaluate an ``if:`` condition to true or false."""
    try:
        return bool(_compiled_expression(expression)(**dict(variables)))
    except SecurityError as exc:
        raise TemplateProblem(f"this condition tries something that is not allowed: {exc}") from None
    except TemplateProblem:
        raise
    except Exception as exc:
        raise TemplateProblem(f"this condition could not be worked out: {exc}") from None


def render_value(value: Any, variables: Mapping[str, Any]) -> Any:
    """Render every string inside a value (for params, headers, bodies).

    A string that is exactly one placeholder (``"${account}"``,
    ``"${attempts + 1}"``) keeps the type of what it works out to, so a number
    stays a number in a JSON body and in later comparisons.
    """
    if isinstance(value, str):
        whole = _WHOLE_PLACEHOLDER.fullmatch(value)
        if whole:
            return _native(whole.group(1), value, variables)
        return render(value, variables)
    if isinstance(value, Mapping):
        return {key: render_value(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [render_value(item, variables) for item in value]
    return value


# One ${...} and nothing else; the inside may not contain a closing brace, so
# "${a} and ${b}" is not mistaken for one placeholder.
_WHOLE_PLACEHOLDER = re.compile(r"\$\{([^{}]*)\}")


def _native(expression: str, text: str, variables: Mapping[str, Any]) -> Any:
    """The value of ``${expression}`` with its own type; text if it is undefined."""
    try:
        inspect_expression(expression)
        value = _compiled_expression(expression)(**dict(variables))
    except (TemplateProblem, jinja2.TemplateError):
        return render(text, variables)  # let render report the problem in its words
    except Exception as exc:
        raise TemplateProblem(f"this template could not be filled in: {exc}") from None
    if isinstance(value, jinja2.Undefined):
        return ""
    return value
