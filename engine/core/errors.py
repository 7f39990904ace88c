"""The one error type users see, and the diagnostics it carries.

Everything a flow author can get wrong ends up as a :class:`Diagnostic`: a
message that names the file, the line, what is wrong and how to fix it. A
command turns a :class:`VoxflowError` into exit code 1 and prints its
diagnostics; anything else escaping is a bug in voxflow (exit code 3).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


class Severity(str, enum.Enum):  # noqa: UP042 - StrEnum would change str(severity)
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in a flow or trigger file.

    ``path`` is the document path in the form a reader would type it
    (``nodes.menu.options[1].next``); ``line`` and ``column`` are 1-based and
    0 when unknown (for example when the file cannot be read at all).
    """

    file: str
    line: int
    column: int
    path: str
    message: str
    hint: str = ""
    severity: Severity = Severity.ERROR
    code: str = ""

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def location(self) -> str:
        if self.line:
            return f"{self.file}:{self.line}:{self.column}"
        return self.file

    def one_line(self) -> str:
        """``file:line:col  path: message; hint`` without colour or context."""
        where = f"  {self.path}:" if self.path else ""
        hint = f" {self.hint}" if self.hint else ""
        label = "" if self.is_error else " warning:"
        return f"{self.location()}{where}{label} {self.message}{hint}"

    def to_json(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "severity": self.severity.value,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
        }


class VoxflowError(Exception):
    """A problem the user can fix. Never shown as a traceback.

    It carries either a plain message or one or more diagnostics (for example
    every schema error of a flow file at once). ``sources`` maps a file name to
    its text when the text is not on disk (a ``REV:path`` from git, a test), so
    the lines around each problem can still be shown.
    """

    def __init__(
        self,
        message: str,
        diagnostics: Iterable[Diagnostic] = (),
        sources: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics)
        self.sources: dict[str, str] = dict(sources or {})

    @classmethod
    def from_diagnostics(
        cls, diagnostics: Sequence[Diagnostic], sources: Mapping[str, str] | None = None
    ) -> VoxflowError:
        errors = [d for d in diagnostics if d.is_error]
        files = sorted({d.file for d in errors})
        count = len(errors)
        noun = "problem" if count == 1 else "problems"
        return cls(f"{count} {noun} in {', '.join(files)}", diagnostics, sources)
