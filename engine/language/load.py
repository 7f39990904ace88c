"""Stage 1, ``load``: YAML text → plain data plus a source map.

Why not ``yaml.safe_load``: we need the line and column of every value so
later stages can point at the exact spot, duplicate keys must be errors (YAML
silently keeps the last one), and we resolve plain scalars the YAML 1.2 way,
as editors do: ``yes``, ``no``, ``on`` and ``off`` stay text (a menu phrase
``yes`` must not turn into ``True``), ``2024-01-01`` stays text and ``1:30``
is not the number 90.
"""

from __future__ import annotations

import math
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from engine.core.errors import Diagnostic, VoxflowError
from engine.language.sourcemap import DocPath, SourceMap, format_path
from engine.language.yaml_messages import explain_yaml_error

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Yaml12Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """PyYAML's (C-accelerated when available) parser with YAML 1.2 core-schema scalars."""

    yaml_implicit_resolvers: dict[str | None, list[tuple[str, re.Pattern[str]]]] = {}


_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_STR = "tag:yaml.org,2002:str"

_IMPLICIT: list[tuple[str, str, str]] = [
    (_BOOL, r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    (_NULL, r"^(?:~|null|Null|NULL|)$", "~nN"),
    (_INT, r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        _FLOAT,
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
]
for _tag, _pattern, _first in _IMPLICIT:
    _Yaml12Loader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))
_TAG_PATTERNS = {tag: re.compile(pattern) for tag, pattern, _ in _IMPLICIT}
_TAG_WORDS = {_BOOL: "true or false", _NULL: "empty", _INT: "a whole number", _FLOAT: "a number"}
# An empty plain scalar ("key:" with nothing after it) resolves to null.
_Yaml12Loader.add_implicit_resolver(_NULL, re.compile(r"^$"), [""])


@dataclass(frozen=True)
class LoadedDocument:
    """A YAML file read into plain data (dicts, lists, str, int, float, bool, None)."""

    file: str
    text: str
    data: Any
    source_map: SourceMap


def load_file(path: str | Path, display_name: str | None = None) -> LoadedDocument:
    """Read and load one YAML file; a missing or unreadable file is a user error."""
    name = display_name or str(path)
    try:
        info = os.stat(path)
        if stat.S_ISREG(info.st_mode) and info.st_size > MAX_FILE_BYTES:
            raise VoxflowError(
                f"{name}: this file is {info.st_size:,} bytes; a flow file is at "
                f"most {MAX_FILE_BYTES:,} bytes. Split it into subflows."
            )
        if not stat.S_ISREG(info.st_mode) and not stat.S_ISDIR(info.st_mode):
            # A pipe or a device would block the reader (and a server's hot reload) for ever.
            raise VoxflowError(
                f"{name} is not a plain file (a pipe or a device?); flow files are plain text files."
            )
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise VoxflowError(f"{name}: no such file. Check the path and try again.") from None
    except IsADirectoryError:
        raise VoxflowError(f"{name} is a folder, not a file.") from None
    except UnicodeDecodeError as exc:
        raise VoxflowError.from_diagnostics([_not_utf8(name, exc)]) from None
    except OSError as exc:
        raise VoxflowError(f"{name}: cannot read this file ({exc.strerror}).") from None
    return load_text(text, name)


def _not_utf8(name: str, exc: UnicodeDecodeError) -> Diagnostic:
    """Where a file stops being UTF-8 text, and what to do about it."""
    data = exc.object if isinstance(exc.object, bytes) else bytes(exc.object)
    hint = "Save the file as UTF-8 in your editor (often under 'Save as' → 'Encoding')."
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return Diagnostic(
            name,
            1,
            1,
            "",
            "this file is saved as UTF-16 text; voxflow reads UTF-8 text.",
            hint,
            code="not-utf8",
        )
    before = data[: exc.start]
    line_start = before.rfind(b"\n") + 1
    column = len(before[line_start:].decode("utf-8", errors="replace")) + 1
    return Diagnostic(
        name,
        before.count(b"\n") + 1,
        column,
        "",
        f"this line has a character that is not UTF-8 text (byte 0x{data[exc.start]:02X}); "
        "the file was probably saved in another encoding.",
        hint,
        code="not-utf8",
    )


def load_text(text: str, file: str) -> LoadedDocument:
    """Load YAML text. Raises :class:`VoxflowError` with every problem found.

    The error carries the text, so the lines around each problem can be shown
    even when the text is not a file on disk (a git revision, an editor buffer).
    """
    try:
        return _load_text(text, file)
    except VoxflowError as error:
        error.sources.setdefault(file, text)
        raise


def _load_text(text: str, file: str) -> LoadedDocument:
    """The work of load_text, which adds the text to any error raised here."""
    source_map = SourceMap(file=file, lines=tuple(text.splitlines()))
    tab_problems = list(_find_tab_indentation(text, file))
    if tab_problems:
        raise VoxflowError.from_diagnostics(tab_problems)
    try:
        _check_nesting(text, file)
        documents = list(yaml.compose_all(text, Loader=_Yaml12Loader))
    except yaml.MarkedYAMLError as exc:
        raise VoxflowError.from_diagnostics([explain_yaml_error(exc, file, text)]) from None
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        # A character YAML does not allow (a control character, or a broken
        # one that is no text at all), or something else without a position.
        odd = _ODD_CHARACTER.search(text)
        where = _position(text, odd.start()) if odd else (1, 1) if text else (0, 0)
        message = (
            f"this line holds an invisible or broken character (U+{ord(odd.group()):04X}) "
            "that YAML does not allow."
            if odd
            else f"this file cannot be read as YAML ({exc})."
        )
        raise VoxflowError.from_diagnostics(
            [
                Diagnostic(
                    file,
                    *where,
                    "",
                    message,
                    "Delete it and type the text again; such characters usually come from text "
                    "copied out of another program."
                    if odd
                    else "",
                    code="yaml-character",
                )
            ]
        ) from None
    documents = [d for d in documents if d is not None]
    if not documents:
        raise VoxflowError.from_diagnostics(
            [Diagnostic(file, 1, 1, "", "the file is empty.", "Start it with 'flow: <name>'.")]
        )
    if len(documents) > 1:
        line, column = documents[1].start_mark.line + 1, documents[1].start_mark.column + 1
        # Point at the '---' line that starts the second document, if there is one.
        for number in range(line, documents[0].end_mark.line, -1):
            if source_map.lines[number - 1 : number] and source_map.lines[number - 1].startswith("---"):
                line, column = number, 1
                break
        raise VoxflowError.from_diagnostics(
            [
                Diagnostic(
                    file,
                    line,
                    column,
                    "",
                    "this file holds more than one YAML document (a line with '---' separates them).",
                    "Put one flow in each file.",
                )
            ]
        )
    builder = _DataBuilder(file, source_map)
    try:
        data = builder.build(documents[0], ())
    except _TooMuchRepetition as exc:
        raise VoxflowError.from_diagnostics(
            [
                Diagnostic(
                    file,
                    exc.line,
                    exc.column,
                    "",
                    "the '*name' references in this file repeat their anchors too many times "
                    f"(more than {_MAX_REPEATED_VALUES} values).",
                    "Write the values out, or use flow 'settings' for shared defaults.",
                    code="yaml-aliases",
                )
            ]
        ) from None
    if builder.problems:
        raise VoxflowError.from_diagnostics(builder.problems)
    return LoadedDocument(file=file, text=text, data=data, source_map=source_map)


# Characters YAML allows in a file; anything else is refused by the parser.
_ODD_CHARACTER = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Deeper nesting than this is no flow anyone writes; refusing it keeps a
# hostile or broken file from exhausting the stack of the parser and checkers.
MAX_NESTING = 50
# Bigger files are refused unread: no one writes a flow of a million characters.
MAX_FILE_BYTES = 1_000_000
# Longer whole numbers are refused (Python will not even print one over 4,300 digits).
MAX_NUMBER_DIGITS = 100
# Anchors and '*references' may repeat values; past this many it is a "YAML bomb".
_MAX_REPEATED_VALUES = 10_000


class _TooMuchRepetition(Exception):
    def __init__(self, line: int, column: int) -> None:
        super().__init__()
        self.line, self.column = line, column


def _check_nesting(text: str, file: str) -> None:
    """Refuse lists and mappings nested deeper than MAX_NESTING, before composing.

    Each level of nesting takes a column of indentation (or a '- ') or a bracket,
    so a file whose longest line plus its brackets stays under the limit is
    skipped; otherwise the parser's events are counted (the parser itself is
    not recursive, unlike the composer, which can crash on very deep input).
    """
    longest = max((len(line) for line in text.splitlines()), default=0)
    if longest + text.count("[") + text.count("{") <= MAX_NESTING:
        return
    depth = 0
    for event in yaml.parse(text, Loader=_Yaml12Loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_NESTING:
                mark = event.start_mark
                where = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
                raise VoxflowError.from_diagnostics(
                    [
                        Diagnostic(
                            file,
                            *where,
                            "",
                            f"lists and mappings are nested more than {MAX_NESTING} levels deep here.",
                            "Check the brackets and the indentation; a flow never needs this much nesting.",
                            code="yaml-nesting",
                        )
                    ]
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _position(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of character ``index`` of ``text`` (lines as splitlines sees them)."""
    parts = text[: max(0, index)].splitlines(keepends=True)
    if not parts:
        return 1, 1
    last = parts[-1]
    if last.splitlines()[0] != last:  # it ends with a line break: the next line starts
        return len(parts) + 1, 1
    return len(parts), len(last) + 1


def _find_tab_indentation(text: str, file: str) -> Iterator[Diagnostic]:
    """Tabs in indentation: YAML forbids them, and editors hide them. Report each line."""
    in_block_scalar = False
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.lstrip(" \t")
        indent = line[: len(line) - len(stripped)]
        if in_block_scalar and (not stripped or indent.startswith(" ")):
            continue  # text inside a "|" or ">" block may contain anything
        in_block_scalar = bool(re.search(r":\s*[|>][-+0-9]*\s*(#.*)?$", line))
        if "\t" in indent and stripped:
            yield Diagnostic(
                file,
                number,
                indent.index("\t") + 1,
                "",
                "this line is indented with a tab; YAML only allows spaces for indentation.",
                "Replace the tab with spaces (most editors have 'convert indentation to spaces').",
                code="yaml-tab",
            )


class _DataBuilder:
    """Turns a composed YAML node tree into plain data, recording positions."""

    def __init__(self, file: str, source_map: SourceMap) -> None:
        self.file = file
        self.source_map = source_map
        self.problems: list[Diagnostic] = []
        self._seen: set[int] = set()  # nodes built once: a second time is a '*reference'
        self._open: set[int] = set()  # nodes being built (an alias to one is a cycle)
        self._repeated = 0

    def build(self, node: yaml.Node, path: DocPath) -> Any:
        mark = node.start_mark
        self.source_map.values[path] = (mark.line + 1, mark.column + 1)
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        key = id(node)
        if key in self._open:
            self._problem(
                (mark.line + 1, mark.column + 1),
                path,
                "this '*name' reference points at a value that contains it, so it never ends.",
                "Write the value out instead of referring to it.",
            )
            return None
        if key in self._seen:
            self._repeated += len(node.value)
            if self._repeated > _MAX_REPEATED_VALUES:
                raise _TooMuchRepetition(mark.line + 1, mark.column + 1)
        self._seen.add(key)
        self._open.add(key)
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item, path + (index,)) for index, item in enumerate(node.value)]
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            return None  # pragma: no cover - the composer makes only these three kinds
        finally:
            self._open.discard(key)

    def _mapping(self, node: yaml.MappingNode, path: DocPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key_mark = key_node.start_mark
            where = (key_mark.line + 1, key_mark.column + 1)
            if not isinstance(key_node, yaml.ScalarNode):
                self._problem(where, path, "a key here is a list or mapping, not a name.")
                continue
            if key_node.tag == "tag:yaml.org,2002:merge":
                self._problem(
                    where,
                    path,
                    "'<<' merge keys are not supported in voxflow files.",
                    "Write the keys out; use flow 'settings' for shared defaults.",
                )
                continue
            key = key_node.value
            if key in result:
                first = self.source_map.keys.get(path + (key,), (0, 0))[0]
                self._problem(
                    where,
                    path + (key,),
                    f"'{key}' appears twice here (first on line {first}).",
                    "Each node needs its own id: rename one of the two nodes (and the exits "
                    "that go to it), or delete one."
                    if path == ("nodes",)
                    else "Each name may appear once; remove or rename one of them.",
                    code="duplicate-key",
                )
                continue
            self.source_map.keys[path + (key,)] = where
            result[key] = self.build(value_node, path + (key,))
        return result

    def _scalar(self, node: yaml.ScalarNode, path: DocPath) -> Any:
        value: str = node.value
        tag = node.tag
        pattern = _TAG_PATTERNS.get(tag)
        if pattern is not None and not pattern.match(value):
            # Only an explicit tag ('!!int hello') can get here.
            self._problem(
                self.source_map.values[path],
                path,
                f"'{value}' is marked as {_TAG_WORDS[tag]} with a '!!' tag, but it is not one.",
                "Remove the '!!' tag.",
            )
            return value
        if tag == _STR:
            return value
        if tag == _NULL:
            return None
        if tag == _BOOL:
            return value.lower() == "true"
        if tag == _INT:
            if len(value) > MAX_NUMBER_DIGITS:
                self._problem(
                    self.source_map.values[path],
                    path,
                    f"this number has {len(value):,} digits; voxflow reads numbers of at most "
                    f"{MAX_NUMBER_DIGITS} digits.",
                    "Shorten it, or put it in quotes if it is text (an account number, say).",
                    code="number-too-long",
                )
                return value
            if value.startswith(("0o", "0x")):
                return int(value[2:], 8 if value[1] == "o" else 16)
            return int(value, 10)
        if tag == _FLOAT:
            lowered = value.lower()
            if lowered.endswith(".inf"):
                return -math.inf if lowered.startswith("-") else math.inf
            if lowered == ".nan":
                return math.nan
            return float(value)
        line, column = self.source_map.values[path]
        self._problem(
            (line, column),
            path,
            f"the YAML tag '{tag}' is not supported here.",
            "Remove the '!' tag and write the value as plain text.",
        )
        return value

    def _problem(
        self,
        where: tuple[int, int],
        path: DocPath,
        message: str,
        hint: str = "",
        code: str = "yaml",
    ) -> None:
        line, column = where
        self.problems.append(Diagnostic(self.file, line, column, format_path(path), message, hint, code=code))
