"""Stage 2, ``validate``: JSON Schema errors said in plain words, at the right line.

Every error is collected (``iter_errors``), not just the first, and each is
turned into a :class:`Diagnostic` with the document path, the position in
the file, and a hint. The graph checks that need the whole flow are in
engine.graph_checks.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError

from engine.errors import Diagnostic
from engine.load import LoadedDocument
from engine.sourcemap import DocPath, format_path
from engine.suggest import did_you_mean, quoted_list

_TYPE_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a set of 'name: value' lines",
    "null": "empty",
}


@functools.lru_cache(maxsize=8)
def _validator_for(schema_json: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(schema_json))


def schema_validator(schema: Mapping[str, Any]) -> jsonschema.Draft202012Validator:
    return _validator_for(json.dumps(schema, sort_keys=True))


def schema_diagnostics(
    document: LoadedDocument, schema: Mapping[str, Any], kind: str = "flow"
) -> list[Diagnostic]:
    """Every schema error in ``document``, one diagnostic each, in file order."""
    validator = schema_validator(schema)
    diagnostics: list[Diagnostic] = []
    seen: set[tuple[int, int, str]] = set()
    for error in validator.iter_errors(document.data):
        for diagnostic in _explain(error, document, schema, kind):
            key = (diagnostic.line, diagnostic.column, diagnostic.message)
            if key not in seen:
                seen.add(key)
                diagnostics.append(diagnostic)
    diagnostics.sort(key=lambda d: (d.line, d.column))
    return diagnostics


def _explain(
    error: ValidationError, document: LoadedDocument, root: Mapping[str, Any], kind: str
) -> Iterable[Diagnostic]:
    path: DocPath = tuple(error.absolute_path)
    source_map = document.source_map
    value = error.instance
    keyword = error.validator
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    hint = str(schema.get("x-hint", ""))

    def at(where: DocPath, message: str, hint_text: str = hint, on_key: bool = False,
           code: str = "") -> Diagnostic:
        line, column = source_map.locate(where, at_key=on_key)
        return Diagnostic(document.file, line, column, format_path(where), message, hint_text,
                          code=code or f"schema-{keyword}")

    if keyword == "additionalProperties":
        allowed = list(schema.get("properties", {}))
        extras = [key for key in value if key not in schema.get("properties", {})]
        for key in extras:
            suggestion = did_you_mean(str(key), allowed)
            tip = (
                suggestion.capitalize() if suggestion
                else f"Allowed here: {quoted_list(allowed)}." if allowed else ""
            )
            yield at(path + (key,), f"unknown field '{key}'.", tip, on_key=True,
                     code="unknown-field")
        return
    if keyword == "required":
        missing = _missing_field(error.message)
        field_schema = schema.get("properties", {}).get(missing, {})
        description = _describe(field_schema, root)
        what = _owner(path, kind)
        tip = f"Add '{missing}:' — {description}" if description else f"Add '{missing}:'."
        yield at(path, f"{what} is missing '{missing}'.", tip, on_key=True, code="missing-field")
        return
    if keyword == "enum" and path and path[-1] == "type" and len(path) == 3 and path[0] == "nodes":
        names = schema["enum"]
        suggestion = did_you_mean(str(value), names)
        tip = suggestion.capitalize() if suggestion else f"Known types: {quoted_list(names, 20)}."
        yield at(path, f"unknown node type '{value}'.", tip, code="unknown-type")
        return
    if keyword == "enum":
        suggestion = did_you_mean(str(value), [str(v) for v in schema["enum"]])
        tip = suggestion.capitalize() if suggestion else ""
        yield at(path, f"'{value}' is not allowed here; use {quoted_list(map(str, schema['enum']))}.",
                 tip)
        return
    if keyword == "type":
        yield at(path, _wrong_type(value, schema["type"], path), hint or _type_hint(value, schema))
        return
    if keyword == "pattern" and error.relative_schema_path and "propertyNames" in error.relative_schema_path:
        yield at(path + (value,), f"'{value}' is not a valid name here.",
                 "Use letters, digits, - and _, starting with a letter.", on_key=True)
        return
    if keyword in ("oneOf", "anyOf") and hint:
        description = schema.get("description", "")
        yield at(path, f"{_show(value)} is not valid here. {description}".strip(), hint)
        return
    if keyword in ("oneOf", "anyOf") and error.context:
        best = min(error.context, key=lambda e: len(list(e.absolute_path)))
        if best.validator == "required" and len(error.context) > 1:
            options = [_missing_field(e.message) for e in error.context if e.validator == "required"]
            yield at(path, f"{_owner(path, kind)} needs one of {quoted_list(options)}.",
                     hint, on_key=True)
            return
        yield from _explain(best, document, root, kind)
        return
    messages = {
        "pattern": f"{_show(value)} is not in the expected form.",
        "const": f"{_show(value)} should be {_show(schema.get('const'))}.",
        "minLength": "this text is empty.",
        "minItems": "this list is empty; it needs at least one item.",
        "minProperties": "this is empty; it needs at least one entry.",
        "minimum": f"{_show(value)} is too small; the smallest allowed is {schema.get('minimum')}.",
        "maximum": f"{_show(value)} is too large; the largest allowed is {schema.get('maximum')}.",
    }
    message = messages.get(str(keyword), error.message)
    yield at(path, message, hint or str(schema.get("description", "")))


def _missing_field(message: str) -> str:
    # jsonschema's message is "'next' is a required property".
    return message.split("'")[1] if message.count("'") >= 2 else message


def _owner(path: DocPath, kind: str) -> str:
    if len(path) == 2 and path[0] == "nodes":
        return f"node '{path[1]}'"
    if not path:
        return f"this {kind} file"
    return f"'{format_path(path)}'"


def _describe(field_schema: Mapping[str, Any], root: Mapping[str, Any]) -> str:
    description = field_schema.get("description")
    ref = field_schema.get("$ref")
    if not description and isinstance(ref, str) and ref.startswith("#/$defs/"):
        description = root.get("$defs", {}).get(ref.split("/")[-1], {}).get("description")
    return str(description or "")


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f"'{value}'"
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return "a list" if isinstance(value, list) else "a set of 'name: value' lines"
    return str(value)


def _type_word(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, str):
        return "text"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "a list"
    return "a set of 'name: value' lines"


def _wrong_type(value: Any, expected: Any, path: DocPath) -> str:
    wanted = expected if isinstance(expected, list) else [expected]
    words = " or ".join(_TYPE_WORDS.get(str(w), str(w)) for w in wanted)
    if value is None:
        return f"'{path[-1] if path else 'this'}' is empty; it should be {words}."
    return f"this should be {words}, not {_type_word(value)}."


def _type_hint(value: Any, schema: Mapping[str, Any]) -> str:
    expected = schema.get("type")
    if expected == "array" and isinstance(value, str):
        return f"Write it as a list: [{value}], or one item per line starting with '- '."
    if expected == "string" and isinstance(value, (int, float, bool)):
        return "Put the value in quotes, e.g. \"1\"."
    if expected == "object" and isinstance(value, list):
        return "Remove the '- ' in front of the lines: write 'name: value' lines."
    if expected == "array" and isinstance(value, dict):
        return "Start each item with '- '."
    return str(schema.get("description", ""))
