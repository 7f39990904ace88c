"""Printing for people: colour on a terminal, plain text in a pipe.

Diagnostics are printed dbt-style: ``file:line:col  path`` then the message
and hint, then the YAML lines around the spot with a caret under it.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TextIO

from engine.core.errors import Diagnostic, VoxflowError

# Control characters (and the bidirectional overrides that make text read backwards) from a
# flow file are shown as \xNN, never sent to the terminal, where they could move the cursor,
# change colours or hide text.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """``text`` with every control character written as an escape such as ``\x1b``."""
    return _UNPRINTABLE.sub(
        lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256 else f"\\u{ord(m.group()):04x}", text
    )


_CODES = {"red": "31", "yellow": "33", "green": "32", "cyan": "36", "bold": "1", "dim": "2"}


def use_colour(stream: TextIO) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return hasattr(stream, "isatty") and stream.isatty()


class Painter:
    def __init__(self, stream: TextIO) -> None:
        self.enabled = use_colour(stream)

    def __call__(self, text: str, *styles: str) -> str:
        if not self.enabled or not styles:
            return text
        codes = ";".join(_CODES[s] for s in styles)
        return f"\033[{codes}m{text}\033[0m"


def context_lines(diagnostic: Diagnostic, lines: tuple[str, ...] | None, around: int = 2) -> list[str]:
    """The file's lines around the problem, numbered, with a caret at the column."""
    if not diagnostic.line:
        return []
    if lines is None:
        try:
            lines = tuple(Path(diagnostic.file).read_text(encoding="utf-8", errors="replace").splitlines())
        except (OSError, UnicodeDecodeError):
            return []
    first = max(1, diagnostic.line - around)
    last = min(len(lines), diagnostic.line)
    width = len(str(last))
    shown = []
    for number in range(first, last + 1):
        text = visible(lines[number - 1].replace("\t", "→"))
        shown.append(f"  {number:>{width}} | {text}")
    if diagnostic.line <= len(lines):
        before = visible(lines[diagnostic.line - 1][: max(0, diagnostic.column - 1)])
        shown.append(f"  {' ' * width} | {' ' * len(before)}^")
    return shown


def format_diagnostic(
    diagnostic: Diagnostic,
    paint: Painter,
    lines: tuple[str, ...] | None = None,
    show_context: bool = True,
) -> str:
    colour = "red" if diagnostic.is_error else "yellow"
    label = paint("error" if diagnostic.is_error else "warning", colour, "bold")
    where = paint(visible(diagnostic.location()), "bold")
    path = f"  {paint(visible(diagnostic.path), 'cyan')}" if diagnostic.path else ""
    text = [f"{where}{path}", f"  {label}: {visible(diagnostic.message)}"]
    if diagnostic.hint:
        text.append(f"  {paint('hint', 'green')}: {visible(diagnostic.hint)}")
    if show_context:
        text += [paint(line, "dim") for line in context_lines(diagnostic, lines)]
    return "\n".join(text)


def print_diagnostics(
    diagnostics: Iterable[Diagnostic],
    stream: TextIO | None = None,
    show_context: bool = True,
    sources: Mapping[str, str] | None = None,
) -> None:
    """Print each diagnostic; ``sources`` gives the text of files not on disk."""
    stream = stream or sys.stderr
    paint = Painter(stream)
    cache: dict[str, tuple[str, ...] | None] = {
        name: tuple(text.splitlines()) for name, text in (sources or {}).items()
    }
    for diagnostic in diagnostics:
        if diagnostic.file not in cache:
            try:
                cache[diagnostic.file] = tuple(
                    Path(diagnostic.file).read_text(encoding="utf-8", errors="replace").splitlines()
                )
            except (OSError, UnicodeDecodeError):
                cache[diagnostic.file] = ()
        print(format_diagnostic(diagnostic, paint, cache[diagnostic.file], show_context), file=stream)
        print(file=stream)


def print_error(error: VoxflowError, stream: TextIO | None = None) -> None:
    stream = stream or sys.stderr
    if error.diagnostics:
        print_diagnostics(error.diagnostics, stream, sources=error.sources)
    paint = Painter(stream)
    print(f"{paint('error', 'red', 'bold')}: {visible(error.message)}", file=stream)
