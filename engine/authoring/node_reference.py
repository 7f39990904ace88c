"""The node reference (docs/nodes.md), written from the installed plugins.

Each node type's documentation and fields come from the plugin itself, so the
reference is always what ``voxflow validate`` accepts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.language.registry import NodeType, PluginRegistry
from engine.language.schema import BASE_DEFS, flow_schema

_REF_WORDS = {
    "#/$defs/node_ref": "node id (an exit)",
    "#/$defs/template": "text, may use ${...}",
    "#/$defs/expression": "expression (true or false)",
    "#/$defs/duration": "length of time (5s, 2m)",
    "#/$defs/variable_name": "variable name",
    "#/$defs/event_handlers": "list of handlers",
    "#/$defs/retry": "{max_attempts, backoff}",
    "#/$defs/phone_destination": "phone number or SIP URI",
    "#/$defs/phrases": "list of phrases",
}


def _kind(schema: Mapping[str, Any]) -> str:
    ref = schema.get("$ref")
    if isinstance(ref, str):
        if ref.startswith("#/$defs/settings/properties/"):
            return "overrides the flow setting"
        return _REF_WORDS.get(ref, ref.rsplit("/", 1)[-1])
    if "enum" in schema:
        return "one of " + ", ".join(f"`{v}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    if schema.get("oneOf") == BASE_DEFS["duration"]["oneOf"]:
        return _REF_WORDS["#/$defs/duration"]
    if "oneOf" in schema or "anyOf" in schema:
        return "value"
    kind = schema.get("type", "any value")
    words = {
        "string": "text",
        "integer": "whole number",
        "number": "number",
        "boolean": "true/false",
        "array": "list",
        "object": "mapping",
    }
    if isinstance(kind, list):
        return " or ".join(words.get(str(k), str(k)) for k in kind)
    return words.get(str(kind), str(kind))


def _description(schema: Mapping[str, Any], root: Mapping[str, Any]) -> str:
    text = schema.get("description")
    ref = schema.get("$ref")
    if not text and isinstance(ref, str) and ref.startswith("#/"):
        current: Any = root
        for part in ref[2:].split("/"):
            current = current.get(part, {}) if isinstance(current, Mapping) else {}
        text = current.get("description") if isinstance(current, Mapping) else ""
    return str(text or "").replace("|", "\\|").replace("\n", " ")


def node_section(node_type: NodeType, root: Mapping[str, Any]) -> str:
    schema = root["$defs"]["node_types"][node_type.name]
    required = set(schema.get("required", []))
    lines = [f"## `{node_type.name}`", "", node_type.doc.strip(), ""]
    runs = "inside the workflow" if node_type.runs_in == "workflow" else "as a Temporal activity"
    lines.append(f"Runs {runs}. From package `{node_type.distribution}`.")
    lines += ["", "| field | required | kind | what it does |", "|---|---|---|---|"]
    for name, field_schema in schema["properties"].items():
        if name == "type":
            continue
        mark = "yes" if name in required else ""
        lines.append(f"| `{name}` | {mark} | {_kind(field_schema)} | {_description(field_schema, root)} |")
    if node_type.outputs:
        lines += ["", "Outputs, saved under `save_as`:", ""]
        lines += [f"- `{name}`: {text}" for name, text in node_type.outputs.items()]
    if node_type.answer_fields:
        lines += ["", "A fixed answer for it (`voxflow test`, `voxflow chat --answers`) may give:", ""]
        lines += [f"- `{name}`: {text}" for name, text in node_type.answer_fields.items()]
    return "\n".join(lines) + "\n"


# How no_input / no_match are counted, said for someone who knows VoiceXML 2.0 (§5.2.2 and
# §5.2.5 count per form and replay the prompt in the default handler).
HANDLER_RULES = [
    "## `no_input` and `no_match`: how they are counted",
    "",
    "A node's handlers are used in order: the first time the caller says nothing (or",
    "something that does not match), the first entry; the second time, the second; after",
    "the list runs out, its last entry again. An entry with `reprompt` says that text and",
    "asks again; one with `say` says it, then asks the node's own prompt again; one with",
    "`next` leaves the node (saying its `say` or `reprompt` on the way out), so entries",
    "after it are never used and `voxflow validate` warns about them.",
    "",
    "**Counts start again at every visit to a node.** A call that comes back to a question",
    "(through a menu, a confirmation, a loop) gets the first handler again. This differs",
    "from VoiceXML 2.0 (§5.2.2, §5.2.5), where a form item's counters are kept until the",
    "whole form is entered again: voxflow has no forms, and each visit of a node is a new",
    "question. To give up after N tries across visits, count them yourself (a `set` node:",
    '`tries: "${tries + 1}"`, and a `condition` on `tries`) or set `max_visits` on the node.',
    "",
    '**Without handlers**, voxflow asks again for ever: after silence it says "Sorry, I',
    "didn't hear anything.\" and the prompt; after an answer it cannot match it says",
    "\"Sorry, I didn't catch that. Could you repeat?\" and the prompt (as VoiceXML's",
    "default handlers re-prompt). `voxflow validate` warns about every question without",
    "them.",
    "",
]


def node_reference(registry: PluginRegistry) -> str:
    root = flow_schema(registry)
    types = list(registry)
    header = [
        "# Node reference",
        "",
        "<!-- Written by `voxflow docs`; do not edit by hand. -->",
        "",
        "Every node has `type`, and may have `description` and `max_visits` (how many",
        "times one call may enter it; default 100). Nodes that run as activities also",
        "take `on_error` (where to go when it fails), `timeout` and `retry`.",
        "",
        "| type | what it does |",
        "|---|---|",
        *[f"| [`{t.name}`](#{t.name}) | {t.summary} |" for t in types],
        "",
        *HANDLER_RULES,
    ]
    return "\n".join(header) + "\n" + "\n".join(node_section(t, root) for t in types)
