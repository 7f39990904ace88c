"""Finding a node's exits, conditions and durations through its schema.

A plugin marks a field as an exit by giving it the schema ``NODE_REF`` (and a
condition with ``EXPRESSION``, a length of time with ``DURATION``). This
module walks a node's values alongside its schema and returns every such
field with its path, so the validator and compiler work for any node type,
including third-party ones, without knowing their fields.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from engine.language.sourcemap import DocPath

FieldKind = Literal["node_ref", "expression", "duration"]
_KINDS: dict[str, FieldKind] = {
    "#/$defs/node_ref": "node_ref",
    "#/$defs/expression": "expression",
    "#/$defs/duration": "duration",
    "#/$defs/settings/properties/no_input_timeout": "duration",
    "#/$defs/settings/properties/max_call_duration": "duration",
}


@dataclass(frozen=True)
class FieldRef:
    kind: FieldKind
    path: DocPath  # relative to the node, e.g. ("options", 1, "next")
    value: Any


def find_fields(root: Mapping[str, Any], schema: Mapping[str, Any], value: Any) -> list[FieldRef]:
    """Every marked field in ``value`` (a node's mapping), in document order."""
    found: dict[tuple[FieldKind, DocPath], FieldRef] = {}
    for ref in _walk(root, schema, value, (), depth=0):
        found.setdefault((ref.kind, ref.path), ref)
    return list(found.values())


def _walk(root: Mapping[str, Any], schema: Any, value: Any, path: DocPath, depth: int) -> Iterator[FieldRef]:
    if not isinstance(schema, Mapping) or depth > 40:
        return
    ref = schema.get("$ref")
    if isinstance(ref, str):
        kind = _KINDS.get(ref)
        if kind is not None:
            yield FieldRef(kind, path, value)
            return
        yield from _walk(root, _resolve(root, ref), value, path, depth + 1)
    for keyword in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(keyword, ()):
            yield from _walk(root, sub, value, path, depth + 1)
    if isinstance(value, Mapping):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            sub = properties.get(key, extra if isinstance(extra, Mapping) else None)
            if sub is not None:
                yield from _walk(root, sub, item, path + (key,), depth + 1)
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for index, item in enumerate(value):
            yield from _walk(root, schema["items"], item, path + (index,), depth + 1)


def _resolve(root: Mapping[str, Any], ref: str) -> Any:
    """Follow a local ``#/a/b`` reference inside the composed schema."""
    if not ref.startswith("#/"):
        return None
    current: Any = root
    for part in ref[2:].split("/"):
        if not isinstance(current, Mapping) or part not in current:
            return None
        current = current[part]
    return current


def exit_name(path: DocPath) -> str:
    """The name of an exit field: ``("options", 1, "next")`` → ``options[1].next``."""
    from engine.language.sourcemap import format_path

    return format_path(path)


def iter_strings(value: Any, path: DocPath = ()) -> Iterator[tuple[DocPath, str]]:
    """Every text value inside ``value`` with its path (templates live in these)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from iter_strings(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from iter_strings(item, path + (index,))


# What an entry of a field built from EVENT_HANDLERS says to the caller (schema.py's event_handler).
_HANDLER_TEXTS = ("reprompt", "say")
_EVENT_HANDLERS_REF = "#/$defs/event_handlers"


def spoken_texts(
    spoken_fields: tuple[str, ...], schema: Mapping[str, Any], config: Mapping[str, Any]
) -> list[str]:
    """The texts a node says to the caller, as written: its ``SPOKEN_FIELDS``, then its handlers'."""
    found = [config[name] for name in spoken_fields if isinstance(config.get(name), str)]
    properties = schema.get("properties") or {}
    for name, spec in properties.items():
        if not (isinstance(spec, Mapping) and spec.get("$ref") == _EVENT_HANDLERS_REF):
            continue
        handlers = config.get(name)
        for handler in handlers if isinstance(handlers, list) else ():
            if isinstance(handler, Mapping):
                found += [handler[key] for key in _HANDLER_TEXTS if isinstance(handler.get(key), str)]
    return found
