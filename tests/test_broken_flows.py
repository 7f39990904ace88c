"""Flows broken the way a newcomer breaks them, and what voxflow says about each.

Every file in tests/broken_flows/ is one realistic mistake. Its comment header
says what must be reported::

    # What the author got wrong, in words.
    # expect-line: 21               the line of the error
    # expect-column: 15             its column (where it is meaningful)
    # expect-errors: 2              how many errors at most (default 1: one mistake, one error)
    # expect-message: no node named 'transfr'     words the message must contain
    # expect-hint: did you mean 'transfer'        words the hint must contain
    # expect-context: no            the file cannot be shown (it is not UTF-8 text)

Each file is checked through ``check_paths`` and through the command line
(``voxflow validate FILE`` as text and as JSON): exit code 1, an error on the
expected line with those words, the YAML lines around it, and never a
traceback or the "unexpected problem" exit code 3.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from engine.cli.main import EXIT_UNEXPECTED, EXIT_USER_ERROR, main
from engine.core.errors import Diagnostic
from engine.core.output import visible
from engine.language.project import check_paths

CASES_DIR = Path(__file__).parent / "broken_flows"
CASE_FILES = sorted(CASES_DIR.glob("*.yaml"))


@dataclass
class Expectation:
    file: Path
    what: str
    line: int
    column: int | None
    max_errors: int = 1
    context: bool = True
    message: list[str] = field(default_factory=list)
    hint: list[str] = field(default_factory=list)


def read_expectation(path: Path) -> Expectation:
    header = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not raw.startswith("#"):
            break
        header.append(raw[1:].strip())
    values: dict[str, list[str]] = {}
    what = []
    for text in header:
        match = re.match(r"expect-(\w+):\s*(.*)$", text)
        if match:
            values.setdefault(match.group(1), []).append(match.group(2).strip())
        else:
            what.append(text)
    assert "line" in values, f"{path.name}: the header needs '# expect-line: N'"
    assert values.get("message"), f"{path.name}: the header needs '# expect-message: words'"
    assert values.get("hint"), f"{path.name}: the header needs '# expect-hint: words'"
    return Expectation(
        file=path,
        what=" ".join(what),
        line=int(values["line"][0]),
        column=int(values["column"][0]) if "column" in values else None,
        max_errors=int(values.get("errors", ["1"])[0]),
        context=values.get("context", ["yes"])[0] != "no",
        message=values.get("message", []),
        hint=values.get("hint", []),
    )


def matches(diagnostic: Diagnostic | dict[str, object], expected: Expectation) -> bool:
    get = diagnostic.get if isinstance(diagnostic, dict) else diagnostic.__getattribute__
    severity = get("severity")
    if getattr(severity, "value", severity) != "error" or get("line") != expected.line:
        return False
    if expected.column is not None and get("column") != expected.column:
        return False
    message, hint = str(get("message")).lower(), str(get("hint")).lower()
    return all(w.lower() in message for w in expected.message) and all(
        w.lower() in hint for w in expected.hint
    )


def describe(diagnostics: list[Diagnostic]) -> str:
    return "\n".join(d.one_line() for d in diagnostics) or "(no diagnostics)"


def test_there_are_enough_cases_each_with_an_expectation() -> None:
    assert len(CASE_FILES) >= 30
    texts = [path.read_bytes() for path in CASE_FILES]
    assert len(set(texts)) == len(texts), "two case files are identical"
    for path in CASE_FILES:
        read_expectation(path)


@pytest.fixture(params=CASE_FILES, ids=[p.stem for p in CASE_FILES])
def case(request: pytest.FixtureRequest) -> Expectation:
    return read_expectation(request.param)


def test_check_paths_reports_the_mistake_on_the_right_line(case: Expectation) -> None:
    result = check_paths([case.file])
    errors = result.errors
    assert any(matches(d, case) for d in errors), (
        f"{case.file.name}: {case.what}\nexpected an error on line {case.line}"
        f"{'' if case.column is None else f', column {case.column}'} with {case.message} "
        f"and hint {case.hint}; got:\n{describe(result.diagnostics)}"
    )
    assert len(errors) <= case.max_errors, (
        f"{case.file.name}: one mistake should give {case.max_errors} error(s), got:\n{describe(errors)}"
    )
    for diagnostic in result.diagnostics:
        assert diagnostic.message and diagnostic.line >= 1 and diagnostic.column >= 1
        assert diagnostic.message[0].islower() or not diagnostic.message[0].isalpha(), (
            "messages continue 'error: ...' and start in lower case"
        )
        assert not diagnostic.hint or diagnostic.hint[0].isupper() or not diagnostic.hint[0].isalpha()
        assert "Traceback" not in diagnostic.message + diagnostic.hint
        assert not result.flows, "a broken flow must not compile"


def test_validate_json_output(case: Expectation, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["validate", str(case.file), "--format", "json"])
    out, err = capsys.readouterr()
    assert code == EXIT_USER_ERROR, f"exit code {code}; stderr:\n{err}"
    assert "Traceback" not in out + err
    report = json.loads(out)
    assert report["ok"] is False
    assert report["files"] == [str(case.file)]
    assert any(matches(d, case) for d in report["diagnostics"]), json.dumps(report, indent=2)


def test_validate_text_output_shows_place_message_hint_and_lines(
    case: Expectation, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["validate", str(case.file)])
    out, err = capsys.readouterr()
    assert code == EXIT_USER_ERROR, f"exit code {code}; stderr:\n{err}"
    assert code != EXIT_UNEXPECTED
    assert "Traceback" not in out + err and "unexpected problem" not in out + err
    diagnostic = next(d for d in check_paths([case.file]).errors if matches(d, case))
    assert f"{case.file}:{diagnostic.line}:{diagnostic.column}" in out
    assert f"error: {visible(diagnostic.message)}" in out
    assert f"hint: {visible(diagnostic.hint)}" in out
    # Control characters from the file reach the terminal only as escapes (\x1b).
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f]", out.replace("\n", "")), repr(out)
    if not case.context:
        return
    # The YAML lines around the problem, numbered, with the offending one last.
    lines = case.file.read_text(encoding="utf-8").splitlines()
    offending = lines[diagnostic.line - 1].replace("\t", "→") if lines else ""
    assert re.search(rf"^\s*{diagnostic.line} \| {re.escape(offending)}$", out, re.MULTILINE), out
    if diagnostic.line > 1:
        above = lines[diagnostic.line - 2].replace("\t", "→")
        assert re.search(rf"^\s*{diagnostic.line - 1} \| {re.escape(above)}$", out, re.MULTILINE)
    assert re.search(r"^\s+\| *\^$", out, re.MULTILINE), "a caret marks the column"
    assert re.search(r"\d+ errors? in 1 file", out)


def test_validate_no_context_prints_one_line_per_problem(
    case: Expectation, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["validate", str(case.file), "--no-context"])
    out, err = capsys.readouterr()
    assert code == EXIT_USER_ERROR
    assert not re.search(r"^\s*\d+ \| ", out, re.MULTILINE), "no source lines"
    assert f"{case.file}:{case.line}:" in out


def test_all_cases_together_report_every_file(capsys: pytest.CaptureFixture[str]) -> None:
    """Validating the folder checks every file; one broken file does not hide the others."""
    code = main(["validate", str(CASES_DIR), "--format", "json"])
    out, err = capsys.readouterr()
    assert code == EXIT_USER_ERROR
    report = json.loads(out)
    reported = {Path(d["file"]).name for d in report["diagnostics"] if d["severity"] == "error"}
    # Files with the same 'flow:' name would also be reported as duplicates, so every case
    # has its own flow name; each file must have at least its own error.
    assert reported == {p.name for p in CASE_FILES}
