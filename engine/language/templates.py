"""``${...}`` templates and ``if:`` expressions, in a sandboxed Jinja2 environment.

Flow authors write ``Hello ${caller_name | title}!``. We use Jinja2 with
``${`` and ``}`` as its variable delimiters (so Jinja filters work) inside a
:class:`SandboxedEnvironment`, which refuses attribute tricks such as
``${ ''.__class__ }``: a flow file must never reach Python internals.
``$${x}`` is a literal dollar sign followed by the value of ``x`` (so
``$${account.balance}`` says "$42.50"). Jinja's block and comment syntax is
moved out of the way so that ``{%`` or ``{#`` in a prompt is just text.

Limits (so that no flow file, and nothing a caller says, can exhaust a
worker's memory or the interpreter's stack): a rendered text is at most
:data:`MAX_OUTPUT` characters (64 KB; ``VOXFLOW_MAX_TEXT`` changes it);
repeating a text or list (``'a' * n``), padding (``center``), joining and
replacing may not make one larger than that; ``**`` may not make a number
of more than :data:`MAX_POWER_BITS` bits; one placeholder may hold at most
:data:`MAX_OPERATIONS` operators and :data:`MAX_DEPTH` levels of brackets,
and numbers of at most :data:`MAX_DIGITS` digits. Nothing is worked out
while a template is compiled (Jinja's constant folding is off), so
validation never evaluates an expression it has not bounded.

A variable that is missing when a template is filled in becomes empty text
(or the template's ``default(...)``); :func:`missing_variables` collects
their names so that the runtime can warn the flow's author.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import jinja2
from jinja2 import meta
from jinja2.sandbox import SandboxedEnvironment, SecurityError

# Strings nobody writes in a prompt, so Jinja blocks and comments are disabled.
_BLOCK = ("\x00{%", "%}\x00")
_COMMENT = ("\x00{#", "#}\x00")
_DOLLAR_ESCAPE = re.compile(r"\$\$\{")
# Placeholders and expressions longer than this are refused: a prompt is short.
MAX_TEMPLATE_LENGTH = 20_000
# The longest text (or list, counted in items) one template may produce.
MAX_OUTPUT = int(os.environ.get("VOXFLOW_MAX_TEXT", "") or 65_536)
MAX_POWER_BITS = 4_096  # about 1,200 digits
MAX_OPERATIONS = 100  # operators, dots and filters in one ${...}
MAX_DEPTH = 20  # brackets inside brackets in one ${...}
MAX_DIGITS = 100  # digits of one number written in a template
_NESTING_WORDS = frozenset({"not", "and", "or", "if", "else", "is", "in"})


class TemplateProblem(ValueError):
    """A template that cannot be parsed or rendered, said for a flow author."""


@dataclass(frozen=True)
class TemplateInfo:
    """What a template refers to: the top-level variable names it reads, and their fields.

    ``fields`` holds ``(variable, field)`` for each ``${variable.field}`` or
    ``${variable['field']}`` (the first level only).
    """

    variables: frozenset[str]
    fields: frozenset[tuple[str, str]] = frozenset()


def _info(tree: jinja2.nodes.Template) -> TemplateInfo:
    variables = frozenset(meta.find_undeclared_variables(tree))
    fields: set[tuple[str, str]] = set()
    for node in tree.find_all((jinja2.nodes.Getattr, jinja2.nodes.Getitem)):
        owner = getattr(node, "node", None)
        if not isinstance(owner, jinja2.nodes.Name) or owner.name not in variables:
            continue
        if isinstance(node, jinja2.nodes.Getattr):
            fields.add((owner.name, node.attr))
        elif (
            isinstance(node, jinja2.nodes.Getitem)
            and isinstance(node.arg, jinja2.nodes.Const)
            and isinstance(node.arg.value, str)
        ):
            fields.add((owner.name, node.arg.value))
    return TemplateInfo(variables, frozenset(fields))


class _Raw(str):
    """Text marked ``| raw``: inserted into a URL as it is, not percent-encoded."""

    __slots__ = ()


_RAW_MISSES: ContextVar[list[tuple[Any, str]] | None] = ContextVar("voxflow_raw_misses", default=None)
_MISSING: ContextVar[list[str] | None] = ContextVar("voxflow_missing_variables", default=None)


class _Missing(jinja2.ChainableUndefined):
    """A missing variable or field: empty text, and noted for the author's warning."""

    __slots__ = ()

    def _note(self) -> None:
        misses = _RAW_MISSES.get()
        if misses is not None:
            misses.append((self._undefined_obj, str(self._undefined_name or "?")))

    def __getattr__(self, name: str) -> Any:
        if name[:2] == "__" and name[-2:] == "__":
            raise AttributeError(name)
        return _Missing(obj=self._undefined_obj, name=f"{self._undefined_name}.{name}")

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        return self.__getattr__(str(key))

    def __str__(self) -> str:
        self._note()
        return ""

    def __iter__(self) -> Iterator[Any]:
        self._note()
        return iter(())

    def __len__(self) -> int:
        self._note()
        return 0

    def __eq__(self, other: Any) -> bool:
        self._note()
        return type(self) is type(other)

    def __ne__(self, other: Any) -> bool:
        return not self.__eq__(other)

    __hash__ = jinja2.ChainableUndefined.__hash__


class _Sandbox(SandboxedEnvironment):
    """The sandbox, with the operations that can make huge values bounded."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for sized, count in ((left, right), (right, left)):
                if isinstance(sized, (str, list, tuple)) and isinstance(count, int):
                    _check_size(len(sized) * max(count, 0), "repeating it")
        elif operator == "**":
            _check_power(left, right)
        elif operator == "%" and isinstance(left, str):
            _check_format(left)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            _check_str_method(owner, getattr(__obj, "__name__", ""), args)
        return super().call(__context, __obj, *args, **kwargs)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, str) and attr in ("format", "format_map"):
            return False  # widths from arguments cannot be bounded; use the format filter
        return super().is_safe_attribute(obj, attr, value)


def _limit_problem(what: str) -> TemplateProblem:
    return TemplateProblem(
        f"{what} would make a text longer than voxflow's limit of {MAX_OUTPUT:,} characters."
    )


def _check_size(size: int, what: str) -> None:
    if size > MAX_OUTPUT:
        raise _limit_problem(what)


def _check_power(base: Any, exponent: Any) -> None:
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
        if abs(base).bit_length() * exponent > MAX_POWER_BITS:
            raise TemplateProblem(
                f"this power makes a number larger than voxflow's limit ({MAX_POWER_BITS} bits)."
            )


_WIDE = re.compile(r"\d{5,}|\*")


def _check_format(text: str) -> None:
    if "%" in text and _WIDE.search(text):
        raise TemplateProblem("a width of 10,000 or more (or a '*' width) in a format is not allowed.")


def _check_str_method(text: str, name: str, args: tuple[Any, ...]) -> None:
    if name in ("center", "ljust", "rjust", "zfill") and args and isinstance(args[0], int):
        _check_size(args[0], f"'{name}'")
    elif name == "expandtabs":
        size = args[0] if args and isinstance(args[0], int) else 8
        _check_size(len(text) + text.count("\t") * max(size, 0), "'expandtabs'")
    elif name == "replace" and len(args) >= 2:
        _check_replace(text, args[0], args[1])
    elif name == "join" and args:
        _check_join(text, args[0])


def _check_replace(text: Any, old: Any, new: Any) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        times = len(text) + 1 if not old else text.count(old)
        _check_size(len(text) + times * len(new), "replacing")


def _check_join(separator: Any, items: Any) -> None:
    if isinstance(items, (str, list, tuple, range)):
        count = len(items)
        _check_size(count, "joining")
        total = len(str(separator)) * max(count - 1, 0)
        total += sum(len(str(item)) for item in items) if count else 0
        _check_size(total, "joining")


def _bounded_filters(filters: dict[str, Any]) -> None:
    """Wrap the filters that can make a value much larger than their input."""
    center, indent, fmt, replace, join = (
        filters[n] for n in ("center", "indent", "format", "replace", "join")
    )

    def bounded_center(value: Any, width: int = 80) -> Any:
        if isinstance(width, int):
            _check_size(width, "'center'")
        return center(value, width)

    def bounded_indent(value: Any, width: Any = 4, *args: Any, **kwargs: Any) -> Any:
        size = width if isinstance(width, int) else len(str(width))
        _check_size(len(str(value)) + (str(value).count("\n") + 1) * max(size, 0), "'indent'")
        return indent(value, width, *args, **kwargs)

    def bounded_format(value: Any, *args: Any, **kwargs: Any) -> Any:
        _check_format(str(value))
        return fmt(value, *args, **kwargs)

    def bounded_replace(eval_ctx: Any, value: Any, old: Any, new: Any, count: Any = None) -> Any:
        _check_replace(str(value), str(old), str(new))
        return replace(eval_ctx, value, old, new, count)

    def bounded_join(eval_ctx: Any, value: Any, d: str = "", attribute: Any = None) -> Any:
        if attribute is None:
            _check_join(d, list(value) if not isinstance(value, (str, list, tuple)) else value)
        return join(eval_ctx, value, d, attribute)

    bounded_replace.jinja_pass_arg = jinja2.utils._PassArg.eval_context  # type: ignore[attr-defined]
    bounded_join.jinja_pass_arg = jinja2.utils._PassArg.eval_context  # type: ignore[attr-defined]
    filters.update(
        center=bounded_center,
        indent=bounded_indent,
        format=bounded_format,
        replace=bounded_replace,
        join=bounded_join,
    )


@functools.cache
def environment() -> SandboxedEnvironment:
    env = _Sandbox(
        variable_start_string="${",
        variable_end_string="}",
        block_start_string=_BLOCK[0],
        block_end_string=_BLOCK[1],
        comment_start_string=_COMMENT[0],
        comment_end_string=_COMMENT[1],
        undefined=_Missing,  # ${account.balance} is empty, not a crash (and noted)
        autoescape=False,
        keep_trailing_newline=True,
        optimized=False,  # no constant folding: nothing is evaluated while compiling
    )
    # Logic nodes render inside the Temporal workflow, which must replay
    # exactly: nothing random may be reachable from a flow file.
    env.filters.pop("random", None)
    env.globals.pop("lipsum", None)
    _bounded_filters(env.filters)
    env.filters["raw"] = _Raw  # `| raw`: a URL placeholder inserted without percent-encoding
    return env


def _encode_url_part(value: Any) -> Any:
    if isinstance(value, (_Raw, jinja2.Undefined)):
        return value
    encoded = quote(str(value), safe="")
    # "." and ".." would be read as "this folder" and "the folder above": encode them too.
    return encoded.replace(".", "%2E") if encoded.strip(".") == "" else encoded


@functools.cache
def url_environment() -> SandboxedEnvironment:
    """The same sandbox, percent-encoding every ``${...}`` unless it ends in ``| raw``."""
    return environment().overlay(finalize=_encode_url_part)


def _to_jinja(text: str) -> str:
    if len(text) > MAX_TEMPLATE_LENGTH:
        raise TemplateProblem(f"this text is longer than {MAX_TEMPLATE_LENGTH} characters.")
    if "\x00" in text:
        raise TemplateProblem("this text contains a NUL character (\\0), which is not allowed.")
    return _DOLLAR_ESCAPE.sub("${ '$' | raw }${", text)


def _check_complexity(source: str) -> None:
    """Refuse placeholders nested or chained so deeply that parsing them would recurse for ever."""
    if "${" not in source:
        return
    operations = depth = 0
    inside = False
    try:
        for _, kind, value in environment().lex(source):
            if kind == "variable_begin":
                inside, operations, depth = True, 0, 0
            elif kind == "variable_end":
                inside = False
            elif not inside:
                continue
            elif kind == "operator":
                operations += 1
                depth += 1 if value in "([{" else -1 if value in ")]}" else 0
                if depth > MAX_DEPTH:
                    raise TemplateProblem(
                        f"a ${{...}} placeholder here has more than {MAX_DEPTH} brackets inside "
                        "each other; split the work over several steps (a set node)."
                    )
            elif kind == "name" and value in _NESTING_WORDS:
                operations += 1
            elif kind in ("integer", "float") and sum(c.isdigit() for c in value) > MAX_DIGITS:
                raise TemplateProblem(
                    f"a number in a ${{...}} placeholder here has more than {MAX_DIGITS} digits."
                )
            if operations > MAX_OPERATIONS:
                raise TemplateProblem(
                    f"a ${{...}} placeholder here has more than {MAX_OPERATIONS} operators, dots "
                    "and filters; split the work over several steps (a set node)."
                )
    except jinja2.TemplateSyntaxError:
        return  # the parser reports it, in its words


def _explain(exc: jinja2.TemplateSyntaxError, text: str, expression: bool) -> TemplateProblem:
    message = exc.message or "it cannot be read"
    if "unexpected end of template" in message or (
        "expected token 'end of print statement'" in message and "${" in text
    ):
        if text.count("${") > text.count("}"):
            return TemplateProblem("a '${' is not closed: every '${' needs a '}' after the variable name.")
    if expression:
        return TemplateProblem(f"this condition cannot be read: {message}.")
    return TemplateProblem(f"a ${{...}} placeholder here cannot be read: {message}.")


@functools.lru_cache(maxsize=4096)
def inspect_template(text: str) -> TemplateInfo:
    """Parse a template; raise :class:`TemplateProblem` if it does not parse."""
    source = _to_jinja(text)
    _check_complexity(source)
    try:
        tree = environment().parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise _explain(exc, text, expression=False) from None
    except (RecursionError, ValueError, MemoryError) as exc:
        raise TemplateProblem(f"a ${{...}} placeholder here cannot be read: {_short(exc)}.") from None
    return _info(tree)


@functools.lru_cache(maxsize=4096)
def inspect_expression(text: str) -> TemplateInfo:
    """Parse an ``if:`` condition; raise :class:`TemplateProblem` if it does not parse."""
    if "${" in text:
        raise TemplateProblem(
            "conditions are written without ${ }: write 'balance > 100', not '${balance} > 100'."
        )
    source = "${ (" + _to_jinja(text) + ") }"
    _check_complexity(source)
    try:
        tree = environment().parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise _explain(exc, text, expression=True) from None
    except (RecursionError, ValueError, MemoryError) as exc:
        raise TemplateProblem(f"this condition cannot be read: {_short(exc)}.") from None
    return _info(tree)


def _short(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "it is nested too deeply"
    return str(exc).split(";")[0] or type(exc).__name__


@functools.lru_cache(maxsize=4096)
def _compiled_template(text: str) -> jinja2.Template:
    inspect_template(text)
    return environment().from_string(_to_jinja(text))


@functools.lru_cache(maxsize=1024)
def _compiled_url(text: str) -> jinja2.Template:
    inspect_template(text)
    return url_environment().from_string(_to_jinja(text))


@contextmanager
def missing_variables() -> Iterator[list[str]]:
    """Collect the names of variables found missing by the renders inside the block."""
    names: list[str] = []
    token = _MISSING.set(names)
    try:
        yield names
    finally:
        _MISSING.reset(token)


def _fill(template: jinja2.Template, variables: Mapping[str, Any]) -> str:
    """Render with the limits, noting missing variables for :func:`missing_variables`."""
    misses: list[tuple[Any, str]] = []
    token = _RAW_MISSES.set(misses)
    try:
        text = template.render(dict(variables))
    finally:
        _RAW_MISSES.reset(token)
    if misses:
        _note_missing(misses, variables)
    _check_size(len(text), "filling in this text")
    return text


def _note_missing(misses: list[tuple[Any, str]], variables: Mapping[str, Any]) -> None:
    names = _MISSING.get()
    if names is None:
        return
    for owner, name in misses:
        if owner is not jinja2.utils.missing:
            parent = next((key for key, value in variables.items() if value is owner), None)
            name = f"{parent}.{name}" if parent else name
        if name not in names:
            names.append(name)


@functools.lru_cache(maxsize=4096)
def _compiled_expression(text: str) -> Any:
    inspect_expression(text)
    return environment().compile_expression(_to_jinja(text), undefined_to_none=False)


def render(text: str, variables: Mapping[str, Any]) -> str:
    """Fill in a template's placeholders. Errors become :class:`TemplateProblem`."""
    try:
        return _fill(_compiled_template(text), variables)
    except SecurityError as exc:
        raise TemplateProblem(f"this template tries something that is not allowed: {exc}") from None
    except TemplateProblem:
        raise
    except RecursionError:
        raise TemplateProblem("this template is nested too deeply to fill in.") from None
    except Exception as exc:  # e.g. a filter applied to the wrong kind of value
        raise TemplateProblem(f"this template could not be filled in: {_short(exc)}") from None


def render_url(text: str, variables: Mapping[str, Any]) -> str:
    """Fill in a URL: each ``${...}`` percent-encoded (unless ``| raw``), scheme and host fixed.

    The scheme and host must be written out before the first placeholder
    (``https://api.example.com/callers/${caller_number}``); a value that
    would change them, even through ``| raw``, is refused.
    """
    origin = url_origin(text)
    if origin is None:
        raise TemplateProblem(URL_ORIGIN_PROBLEM)
    try:
        url = _fill(_compiled_url(text), variables)
    except SecurityError as exc:
        raise TemplateProblem(f"this address tries something that is not allowed: {exc}") from None
    except TemplateProblem:
        raise
    except Exception as exc:
        raise TemplateProblem(f"this address could not be filled in: {_short(exc)}") from None
    if url_origin(url, whole=True) != origin:
        raise TemplateProblem(
            f"a value put into this address would change where it goes ({origin[0]}://{origin[1]}); "
            "values are percent-encoded unless '| raw' is written after them."
        )
    return url


URL_ORIGIN_PROBLEM = (
    "the address must start with http:// or https:// and the host written out, followed by / "
    "or ? before any ${...}: the host can never come from a variable."
)
_ORIGIN = re.compile(r"(https?)://([^/?#\s$\\]+)(?:[/?#]|$)", re.IGNORECASE)


def url_origin(text: str, whole: bool = False) -> tuple[str, str] | None:
    """(scheme, host) written at the start of a URL template, before any placeholder."""
    fixed = text if whole else text.split("${", 1)[0].replace("$$", "$")
    match = _ORIGIN.match(fixed)
    if match is None or (not whole and "${" in text and match.end() > len(fixed)):
        return None
    if not whole and "${" in text and fixed[match.end() - 1 : match.end()] not in "/?#":
        return None
    return match.group(1).lower(), match.group(2).lower()


def evaluate(expression: str, variables: Mapping[str, Any]) -> bool:
    """Evaluate an ``if:`` condition to true or false."""
    misses: list[tuple[Any, str]] = []
    token = _RAW_MISSES.set(misses)
    try:
        return bool(_compiled_expression(expression)(**dict(variables)))
    except SecurityError as exc:
        raise TemplateProblem(f"this condition tries something that is not allowed: {exc}") from None
    except TemplateProblem:
        raise
    except RecursionError:
        raise TemplateProblem("this condition is nested too deeply to work out.") from None
    except Exception as exc:
        raise TemplateProblem(f"this condition could not be worked out: {_short(exc)}") from None
    finally:
        _RAW_MISSES.reset(token)
        if misses:
            _note_missing(misses, variables)


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
    misses: list[tuple[Any, str]] = []
    token = _RAW_MISSES.set(misses)
    try:
        inspect_expression(expression)
        value = _compiled_expression(expression)(**dict(variables))
    except (TemplateProblem, jinja2.TemplateError):
        return render(text, variables)  # let render report the problem in its words
    except RecursionError:
        raise TemplateProblem("this template is nested too deeply to fill in.") from None
    except Exception as exc:
        raise TemplateProblem(f"this template could not be filled in: {_short(exc)}") from None
    finally:
        _RAW_MISSES.reset(token)
    if isinstance(value, jinja2.Undefined):
        misses.append((value._undefined_obj, str(value._undefined_name or "?")))
    if misses:
        _note_missing(misses, variables)
    if isinstance(value, jinja2.Undefined):
        return ""
    _check_size(_size(value), "filling in this value")
    return value


def _size(value: Any, budget: int = MAX_OUTPUT + 1) -> int:
    """Characters and items in a value, counted until the budget is spent."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, Mapping):
        items: Any = list(value.keys()) + list(value.values())
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        return 1
    total = len(items)
    for item in items:
        if total > budget:
            break
        total += _size(item, budget - total)
    return total
