"""Stage 2, ``validate``: JSON Schema errors said in plain words, at the right line.

Every error is collected (``iter_errors``), not just the first, and each is
turned into a :class:`Diagnostic` with the document path, the position in
the file, and a hint. The graph checks that need the whole flow are in
engine.language.graph_checks.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError

from engine.core.errors import Diagnostic
from engine.core.suggest import as_sentence, closest, did_you_mean, quoted_list
from engine.language.duration import DURATION_PATTERN
from engine.language.load import LoadedDocument
from engine.language.schema import E164_PATTERN, ID_PATTERN, NO_TEMPLATE_PATTERN
from engine.language.sourcemap import DocPath, format_path
from engine.language.templates import URL_ORIGIN_PROBLEM

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


# Validators by the identity of the schema they were built from (flow_schema() and
# trigger_schema() return one cached dictionary each): serialising the schema to find its
# validator cost more than validating a small flow.
_BY_IDENTITY: dict[int, tuple[Mapping[str, Any], Any]] = {}


def _cached(schema: Mapping[str, Any], build: Any) -> Any:
    entry = _BY_IDENTITY.get(id(schema))
    if entry is None or entry[0] is not schema:
        entry = (schema, build(schema))
        _BY_IDENTITY[id(schema)] = entry
    return entry[1]


class _SplitValidator:
    """The flow schema's validation, node by node.

    The composed schema picks a node's type schema through one ``if``/``then`` per
    node type, so every node was tried against every type (16 ``if`` checks a node,
    most of the validation time). This validates the document with that choice left
    out, then each node against its own type's schema only, and gives the errors
    the same paths (``nodes.<id>...``) and schemas as the composed schema would.
    """

    def __init__(self, schema: Mapping[str, Any]) -> None:
        defs = dict(schema["$defs"])
        node = dict(defs["node"])
        node.pop("allOf", None)
        defs["node"] = node
        self.document = jsonschema.Draft202012Validator({**schema, "$defs": defs})
        self.types = {
            name: jsonschema.Draft202012Validator(
                {"$defs": schema["$defs"], "$ref": f"#/$defs/node_types/{name}"}
            )
            for name in schema["$defs"]["node_types"]
        }

    def iter_errors(self, data: Any) -> Iterable[ValidationError]:
        yield from self.document.iter_errors(data)
        nodes = data.get("nodes") if isinstance(data, Mapping) else None
        if not isinstance(nodes, Mapping):
            return
        for node_id, node in nodes.items():
            kind = node.get("type") if isinstance(node, Mapping) else None
            validator = self.types.get(kind) if isinstance(kind, str) else None
            if validator is None:
                continue
            for error in validator.iter_errors(node):
                error.path.extendleft(reversed(("nodes", node_id)))
                yield error


def _validator(schema: Mapping[str, Any]) -> Any:
    def build(s: Mapping[str, Any]) -> Any:
        defs = s.get("$defs", {})
        node = defs.get("node", {}) if isinstance(defs, Mapping) else {}
        if "node_types" in defs and isinstance(node, Mapping) and "allOf" in node:
            return _SplitValidator(s)
        return _validator_for(json.dumps(s, sort_keys=True))

    return _cached(schema, build)


def schema_diagnostics(
    document: LoadedDocument, schema: Mapping[str, Any], kind: str = "flow"
) -> list[Diagnostic]:
    """Every schema error in ``document``, one diagnostic each, in file order."""
    validator = _validator(schema)
    diagnostics: list[Diagnostic] = []
    seen: set[tuple[int, int, str]] = set()
    missing: dict[DocPath, list[ValidationError]] = {}
    misspelled: set[tuple[DocPath, str]] = set()  # (where, the field an unknown one resembles)
    explained: list[Diagnostic] = []
    for error in validator.iter_errors(document.data):
        if error.validator == "required":  # one message per place, naming every missing field
            missing.setdefault(tuple(error.absolute_path), []).append(error)
            continue
        if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
            allowed = list(error.schema.get("properties", {}))
            for key in error.instance:
                match = closest(str(key), allowed)
                if match and match not in error.instance:
                    misspelled.add((tuple(error.absolute_path), match))
        explained += _explain(error, document, schema, kind)
    for path, errors in missing.items():
        # 'Next: a' is reported as "did you mean 'next'?"; "missing 'next'" would be the
        # same mistake told twice.
        errors = [e for e in errors if (path, _missing_field(e.message)) not in misspelled]
        if errors:
            explained.append(_missing_fields(errors, document, schema, kind))
    for diagnostic in explained:
        key = (diagnostic.line, diagnostic.column, diagnostic.message)
        if key not in seen:
            seen.add(key)
            diagnostics.append(diagnostic)
    diagnostics.sort(key=lambda d: (d.line, d.column))
    return diagnostics


@dataclass(frozen=True)
class _Failure:
    """One schema error, with what the explainers below read from it."""

    error: ValidationError
    document: LoadedDocument
    root: Mapping[str, Any]
    kind: str
    path: DocPath
    value: Any
    keyword: str
    schema: Mapping[str, Any]
    hint: str

    def at(
        self, where: DocPath, message: str, hint_text: str | None = None, on_key: bool = False, code: str = ""
    ) -> Diagnostic:
        line, column = self.document.source_map.locate(where, at_key=on_key)
        return Diagnostic(
            self.document.file,
            line,
            column,
            format_path(where),
            message,
            self.hint if hint_text is None else hint_text,
            code=code or f"schema-{self.keyword}",
        )


Explained = list[Diagnostic] | None  # None: this explainer does not apply


def _unknown_fields(f: _Failure) -> Explained:
    allowed = list(f.schema.get("properties", {}))
    found = []
    for key in [key for key in f.value if key not in f.schema.get("properties", {})]:
        suggestion = did_you_mean(str(key), allowed)
        tip = (
            as_sentence(suggestion)
            if suggestion
            else f"Allowed here: {quoted_list(allowed, 40)}."
            if allowed
            else ""
        )
        found.append(f.at(f.path + (key,), f"unknown field '{key}'.", tip, on_key=True, code="unknown-field"))
    return found


def _required(f: _Failure) -> Explained:
    return [_missing_fields([f.error], f.document, f.root, f.kind)]


def _not_this_kind_of_file(f: _Failure) -> Explained:
    if f.path or isinstance(f.value, (dict, list)):
        return None
    return [
        f.at(
            f.path,
            f"this is not a {f.kind} file: it holds {_type_word(f.value)}, not 'name: value' lines.",
            _START_HINT.get(f.kind, ""),
            code="not-a-mapping",
        )
    ]


def _unknown_node_type(f: _Failure) -> Explained:
    if not (f.path and f.path[-1] == "type" and len(f.path) == 3 and f.path[0] == "nodes"):
        return None
    names = f.schema["enum"]
    suggestion = did_you_mean(str(f.value), names)
    tip = as_sentence(suggestion) if suggestion else f"Known types: {quoted_list(names, 20)}."
    return [f.at(f.path, f"unknown node type '{f.value}'.", tip, code="unknown-type")]


def _not_in_enum(f: _Failure) -> Explained:
    suggestion = did_you_mean(str(f.value), [str(v) for v in f.schema["enum"]])
    tip = as_sentence(suggestion) if suggestion else ""
    return [
        f.at(f.path, f"'{f.value}' is not allowed here; use {quoted_list(map(str, f.schema['enum']))}.", tip)
    ]


def _node_not_a_mapping(f: _Failure) -> Explained:
    if not (len(f.path) == 2 and f.path[0] == "nodes" and not isinstance(f.value, dict)):
        return None
    return list(_not_a_node(str(f.path[1]), f.value, f.document, f.root, f.at))


def _variable_not_a_mapping(f: _Failure) -> Explained:
    if not (len(f.path) == 2 and f.path[0] == "variables" and not isinstance(f.value, dict)):
        return None
    shown = "" if f.value is None else json.dumps(f.value)
    return [
        f.at(
            f.path,
            f"variable '{f.path[1]}' should be a set of 'name: value' lines, not {_type_word(f.value)}.",
            f"Write it as '{f.path[1]}: {{default: {shown}}}'.",
        )
    ]


def _empty_node_ref(f: _Failure) -> Explained:
    if f.value is not None or f.schema.get("pattern") != ID_PATTERN:
        return None
    return [f.at(f.path, f"'{f.path[-1]}' is empty: it does not say which node to go to.")]


def _list_of_node_refs(f: _Failure) -> Explained:
    if not isinstance(f.value, list) or f.schema.get("pattern") != ID_PATTERN:
        return None
    return [
        f.at(
            f.path,
            _wrong_type(f.value, f.schema["type"], f.path),
            f"'{f.path[-1]}' names one node; to choose between nodes, use a condition or a menu node.",
        )
    ]


def _wrong_type_of_value(f: _Failure) -> Explained:
    return [
        f.at(f.path, _wrong_type(f.value, f.schema["type"], f.path), f.hint or _type_hint(f.value, f.schema))
    ]


def _fixed_name(value: Any) -> str:
    fixed = re.sub(r"[^A-Za-z0-9_-]+", "_", str(value)).strip("_")
    return f", e.g. '{fixed}'" if fixed[:1].isalpha() else ""


def _bad_key_name(f: _Failure) -> Explained:
    if not (f.error.relative_schema_path and "propertyNames" in f.error.relative_schema_path):
        return None
    what = "node id" if f.path == ("nodes",) else "name"
    return [
        f.at(
            f.path + (f.value,),
            f"'{f.value}' is not a valid {what}.",
            f"Use only letters, digits, - and _ (no spaces), starting with a letter{_fixed_name(f.value)}.",
            on_key=True,
            code="bad-name",
        )
    ]


def _bad_id(f: _Failure) -> Explained:
    if f.schema.get("pattern") != ID_PATTERN:
        return None
    what = "node id" if "node" in str(f.schema.get("description", "")).lower() else "name"
    return [
        f.at(
            f.path,
            f"{_show(f.value)} is not a valid {what}.",
            f"Use only letters, digits, - and _ (no spaces), starting with a letter{_fixed_name(f.value)}.",
            code="bad-name",
        )
    ]


def _template_in_raw_text(f: _Failure) -> Explained:
    if not isinstance(f.value, str) or f.schema.get("pattern") != NO_TEMPLATE_PATTERN:
        return None
    found = re.search(r"\$\{[^}]*\}?|\{%|%\}|\{#|#\}|\x00", f.value)
    shown = (found.group() if found else "${").replace("\x00", "\\0")
    what = "${...} placeholders" if shown.startswith("${") else "template syntax"
    return [
        f.at(
            f.path, f"'{f.path[-1]}' must not contain {what} (found '{shown}').", code="template-in-raw-text"
        )
    ]


def _placeholder_not_allowed(f: _Failure) -> Explained:
    if not (isinstance(f.value, str) and "${" in f.value and "\\$\\{" in str(f.schema.get("pattern", ""))):
        return None
    placeholder = re.search(r"\$\{[^}]*\}?", f.value)
    return [
        f.at(
            f.path,
            f"'{f.path[-1]}' must not contain ${{...}} placeholders "
            f"(found '{placeholder.group() if placeholder else '${'}').",
        )
    ]


def _bad_url(f: _Failure) -> Explained:
    if not (isinstance(f.value, str) and f.schema.get("x-url")):
        return None
    return [
        f.at(
            f.path,
            f"{_show(f.value)} is not an address voxflow will call: {URL_ORIGIN_PROBLEM}",
            code="bad-url",
        )
    ]


def _bad_duration(f: _Failure) -> Explained:
    if not _is_duration(f.schema):
        return None
    fixed = _duration_fix(f.value)
    return [
        f.at(
            f.path,
            f"{_show(f.value)} is not a length of time voxflow can read.",
            f"Write {fixed} instead." if fixed else f.hint,
            code="bad-duration",
        )
    ]


def _bad_destination(f: _Failure) -> Explained:
    if not any(sub.get("pattern") == E164_PATTERN for sub in f.schema.get("anyOf", [])):
        return None
    return [
        f.at(
            f.path,
            f"{_show(f.value)} is not a phone number or SIP address voxflow can call.",
            code="bad-destination",
        )
    ]


def _needs_one_of_fields(f: _Failure) -> Explained:
    alternatives = f.schema.get(f.keyword, [])
    if not alternatives or not all(isinstance(a, Mapping) and set(a) == {"required"} for a in alternatives):
        return None
    names = [name for a in alternatives for name in a["required"]]
    return [
        f.at(
            f.path, f"{_owner(f.path, f.kind)} needs {quoted_list(names)}.", on_key=True, code="missing-field"
        )
    ]


def _hinted_alternatives(f: _Failure) -> Explained:
    if not f.hint:
        return None
    description = f.schema.get("description", "")
    return [f.at(f.path, f"{_show(f.value)} is not valid here. {description}".strip())]


def _closest_alternative(f: _Failure) -> Explained:
    if not f.error.context:
        return None
    best = min(f.error.context, key=lambda e: len(list(e.absolute_path)))
    if best.validator == "required" and len(f.error.context) > 1:
        options = [_missing_field(e.message) for e in f.error.context if e.validator == "required"]
        return [f.at(f.path, f"{_owner(f.path, f.kind)} needs one of {quoted_list(options)}.", on_key=True)]
    return list(_explain(best, f.document, f.root, f.kind))


_ALTERNATIVES = (
    _bad_duration,
    _bad_destination,
    _needs_one_of_fields,
    _hinted_alternatives,
    _closest_alternative,
)
# JSON Schema keyword → explainers tried in order; the first that applies explains the error.
_EXPLAINERS: dict[str, tuple[Callable[[_Failure], Explained], ...]] = {
    "additionalProperties": (_unknown_fields,),
    "required": (_required,),
    "type": (
        _not_this_kind_of_file,
        _node_not_a_mapping,
        _variable_not_a_mapping,
        _empty_node_ref,
        _list_of_node_refs,
        _wrong_type_of_value,
    ),
    "enum": (_unknown_node_type, _not_in_enum),
    "pattern": (_bad_key_name, _bad_id, _template_in_raw_text, _placeholder_not_allowed, _bad_url),
    "oneOf": _ALTERNATIVES,
    "anyOf": _ALTERNATIVES,
}


def _explain(
    error: ValidationError, document: LoadedDocument, root: Mapping[str, Any], kind: str
) -> Iterable[Diagnostic]:
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    failure = _Failure(
        error,
        document,
        root,
        kind,
        tuple(error.absolute_path),
        error.instance,
        str(error.validator),
        schema,
        str(schema.get("x-hint", "")),
    )
    for explainer in _EXPLAINERS.get(failure.keyword, ()):
        explained = explainer(failure)
        if explained is not None:
            return explained
    return [
        failure.at(failure.path, _plain_message(failure), failure.hint or str(schema.get("description", "")))
    ]


def _plain_message(f: _Failure) -> str:
    value, schema, path = f.value, f.schema, f.path
    messages = {
        "pattern": f"{_show(value)} is not a valid '{path[-1]}'."
        if path and isinstance(path[-1], str)
        else f"{_show(value)} is not in the expected form.",
        "const": f"{_show(value)} should be {_show(schema.get('const'))}.",
        "minLength": "this text is empty.",
        "minItems": "this list is empty; it needs at least one item.",
        "minProperties": "this is empty; it needs at least one entry.",
        "minimum": f"{_show(value)} is too small; the smallest allowed is {schema.get('minimum')}.",
        "maximum": f"{_show(value)} is too large; the largest allowed is {schema.get('maximum')}.",
    }
    return messages.get(f.keyword, f.error.message)


_START_HINT = {
    "flow": "A flow file starts with 'flow: <name>', 'start: <first node>' and 'nodes:'; "
    "see flows/account-balance.yaml for an example.",
    "trigger": "A trigger file has 'number: \"+15550001111\"' and 'flow: <flow name>'.",
}


def _missing_fields(
    errors: list[ValidationError], document: LoadedDocument, root: Mapping[str, Any], kind: str
) -> Diagnostic:
    """One diagnostic for every field missing from one place."""
    path: DocPath = tuple(errors[0].absolute_path)
    schema = errors[0].schema if isinstance(errors[0].schema, Mapping) else {}
    names = list(dict.fromkeys(_missing_field(e.message) for e in errors))
    tips = []
    for name in names:
        description = _describe(schema.get("properties", {}).get(name, {}), root)
        if name == "type" and len(path) == 2 and path[0] == "nodes":
            types = root.get("$defs", {}).get("node", {}).get("properties", {}).get("type", {})
            description = f"what the node does, one of {quoted_list(types.get('enum', []), 20)}."
        description = _lower_first(description).rstrip(".")
        tips.append(f"'{name}:' — {description}" if description else f"'{name}:'")
    tip = "Add " + ("; ".join(tips) if len(tips) > 1 else tips[0])
    if not tip.endswith("."):
        tip += "."
    line, column = document.source_map.locate(path, at_key=True)
    return Diagnostic(
        document.file,
        line,
        column,
        format_path(path),
        f"{_owner(path, kind)} is missing {' and '.join(quoted_list(names).rsplit(' or ', 1))}.",
        tip,
        code="missing-field",
    )


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


def _not_a_node(
    node_id: str, value: Any, document: LoadedDocument, root: Mapping[str, Any], at: Any
) -> Iterable[Diagnostic]:
    """A node id whose value is not a set of fields: usually an indentation slip."""
    fields = {
        name for t in root.get("$defs", {}).get("node_types", {}).values() for name in t.get("properties", {})
    }
    ids = list(document.data["nodes"]) if isinstance(document.data.get("nodes"), dict) else []
    place = ids.index(node_id) if node_id in ids else -1
    owners = [i for i in ids[: max(place, 0)] if i not in fields]
    if node_id in fields and owners:
        yield at(
            ("nodes", node_id),
            f"'{node_id}' is lined up with the node ids, so it reads as a node named '{node_id}'.",
            f"Indent it under the node it belongs to ('{owners[-1]}:') by two more spaces.",
            on_key=True,
            code="not-a-node",
        )
    elif value is None and 0 <= place < len(ids) - 1 and ids[place + 1] in fields:
        return  # the field lined up with the node ids just below is reported instead
    elif value is None:
        yield at(
            ("nodes", node_id),
            f"node '{node_id}' is empty.",
            f"Write its fields on the lines below, indented under '{node_id}:', starting with 'type:'.",
            on_key=True,
            code="not-a-node",
        )
    else:
        yield at(
            ("nodes", node_id),
            f"node '{node_id}' should be a set of 'name: value' lines, not {_type_word(value)}.",
            f"Write its fields on the lines below, indented under '{node_id}:', starting with 'type:'.",
            on_key=True,
            code="not-a-node",
        )


def _is_duration(schema: Mapping[str, Any]) -> bool:
    return any(sub.get("pattern") == DURATION_PATTERN for sub in schema.get("oneOf", []))


_UNIT_WORDS = {
    **dict.fromkeys(("ms", "msec", "msecs", "millisecond", "milliseconds"), "ms"),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), "s"),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), "m"),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), "h"),
}


def _duration_fix(value: Any) -> str:
    """'5 seconds' → '5s', '2 minutes' → '2m'; '' when the value is no such thing."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*", value) if isinstance(value, str) else None
    unit = _UNIT_WORDS.get(match.group(2).lower()) if match else None
    return f"{match.group(1)}{unit}" if match and unit else ""


def _missing_field(message: str) -> str:
    # jsonschema's message is "'next' is a required property".
    return message.split("'")[1] if message.count("'") >= 2 else message


_ITEM_WORDS = {
    "options": "option",
    "branches": "branch",
    "no_input": "no_input step",
    "no_match": "no_match step",
}


def _owner(path: DocPath, kind: str) -> str:
    if len(path) == 2 and path[0] == "nodes":
        return f"node '{path[1]}'"
    if len(path) == 4 and path[0] == "nodes" and isinstance(path[3], int):
        item = _ITEM_WORDS.get(str(path[2]), f"item of '{path[2]}'")
        return f"{item} {path[3] + 1} of node '{path[1]}'"
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
        return f"'{value}'" if len(value) <= 40 else f"'{value[:37]}...'"
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
    name = f"'{path[-1]}'" if path and isinstance(path[-1], str) else "this"
    if value is None:
        return f"{name} is empty; it should be {words}."
    return f"{name} should be {words}, not {_type_word(value)}."


def _type_hint(value: Any, schema: Mapping[str, Any]) -> str:
    expected = schema.get("type")
    items = schema.get("items")
    if (
        expected == "array"
        and isinstance(value, str)
        and isinstance(items, Mapping)
        and (str(items.get("$ref", "")).endswith("/event_handler"))
    ):
        said = value.replace('"', '\\"')
        return (
            f"Write it as a list of steps, one per line starting with '- ': "
            f"'- reprompt: \"{said}\"', then '- next: <node>' for the last try."
        )
    if expected == "array" and isinstance(value, str):
        item = value if re.fullmatch(r"[\w .!?-]+", value) else '"' + value.replace('"', '\\"') + '"'
        return f"Write it as a list: [{item}], or one item per line starting with '- '."
    if expected == "boolean" and isinstance(value, (str, int, float)):
        return f"Write true or false (not {_show(value)})."
    if expected == "string" and isinstance(value, (int, float, bool)):
        return 'Put the value in quotes, e.g. "1".'
    if expected == "object" and isinstance(value, list):
        return "Remove the '- ' in front of the lines: write 'name: value' lines."
    if expected == "array" and isinstance(value, dict):
        return "Start each item with '- '."
    return str(schema.get("description", ""))
