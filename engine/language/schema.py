"""The JSON Schemas of flow and trigger files, composed from the installed plugins.

``voxflow schema`` writes them to schemas/; editors read them through the
``# yaml-language-server: $schema=...`` line at the top of each file, and
``validate`` checks files against the very same dictionaries.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

from engine.language.duration import DURATION_PATTERN
from engine.language.registry import PluginRegistry

DRAFT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_BASE_URL = "https://voxflow.dev/schemas"
ID_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]*$"
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
E164_PATTERN = r"^\+[1-9][0-9]{6,14}$"
SIP_URI_PATTERN = r"^sips?:[^@\s]+@[^@\s]+$"
DEFAULT_MAX_VISITS = 100
# Text used exactly as written (SQL): no template syntax of any kind, not ${...}, not Jinja's
# block or comment tags, not the NUL behind which voxflow's template engine hides those.
NO_TEMPLATE_PATTERN = r"^(?![\s\S]*(\$\{|\{%|%\}|\{#|#\}|\x00))"

_DURATION: dict[str, Any] = {
    "description": "A length of time: 500ms, 5s, 2m, 1h (or a number of seconds).",
    "x-hint": "Write a number followed by ms, s, m or h, for example 5s or 2m.",
    "oneOf": [
        {"type": "string", "pattern": DURATION_PATTERN},
        {"type": "number", "minimum": 0},
    ],
}

_SETTINGS: dict[str, Any] = {
    "type": "object",
    "description": "Defaults for every node of the flow; a node's own value overrides them.",
    "additionalProperties": False,
    "properties": {
        "voice": {"type": "string", "minLength": 1, "description": "The voice that speaks."},
        "language": {
            "type": "string",
            "pattern": r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$",
            "description": "Language of speech and recognition, e.g. en-US.",
            "x-hint": "Use a language tag such as en-US, en-GB, es-ES or fr-FR.",
        },
        "barge_in": {
            "type": "boolean",
            "description": "Whether the caller can interrupt prompts by speaking or pressing keys.",
        },
        "no_input_timeout": {**_DURATION, "description": "How long to wait for the caller."},
        "end_silence_ms": {
            "type": "integer",
            "minimum": 100,
            "maximum": 10000,
            "description": "Silence (in milliseconds) that ends the caller's answer (default 800; "
            "an answer that is a whole expected phrase ends sooner, and so does free speech that "
            "the Smart Turn model finds finished, when it is on: VOXFLOW_TURN_MODEL).",
        },
        "max_call_duration": {**_DURATION, "description": "The longest a call may last."},
        "low_confidence_threshold": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "description": "Speech recognised with less confidence than this counts as no match.",
        },
        "rapid_interruptions": {
            "type": "boolean",
            "description": "Offer a human after more than 3 barge-ins in 10 seconds.",
        },
        "silence_check_after": {
            **_DURATION,
            "description": "Silence before asking 'Are you still there?' (default 30s; 0 turns it off).",
        },
        "silence_hangup_after": {
            **_DURATION,
            "description": "More silence after that question before hanging up (default 10s).",
        },
    },
}

BASE_DEFS: dict[str, Any] = {
    "node_ref": {
        "type": "string",
        "pattern": ID_PATTERN,
        "description": "The id of another node of this flow.",
        "x-hint": "Write the id of a node of this flow, as it appears under 'nodes:'.",
    },
    "template": {
        "type": "string",
        "description": "Text; ${name} inserts a variable, $${ writes a literal dollar sign.",
    },
    "raw_text": {
        "type": "string",
        "pattern": NO_TEMPLATE_PATTERN,
        "description": "Text used exactly as written: never filled in, so no ${...}, {% %} or {# #} in it.",
        "x-hint": "Values never go into this text: pass them separately (for SQL, write :name "
        "in the query and 'params: {name: \"${...}\"}' beside it).",
    },
    "url": {
        "type": "string",
        "x-url": True,
        "pattern": r"^https?://[^/?#\s$\\]+(?:[/?#][\s\S]*)?$",
        "description": "An address starting with http:// or https:// and its host; each ${...} "
        "in it is percent-encoded (write ${value | raw} to insert it as it is).",
        "x-hint": "Write the address in full, e.g. https://api.example.com/callers/${caller_number}: "
        "the scheme and host are written out, never taken from a ${variable}; pass other values "
        "with 'query:'.",
    },
    "expression": {
        "type": "string",
        "minLength": 1,
        "description": "A condition such as: account.balance > 100 (no ${ } around it).",
    },
    "duration": _DURATION,
    "variable_name": {
        "type": "string",
        "pattern": NAME_PATTERN,
        "description": "A variable name: letters, digits and _, not starting with a digit.",
        "x-hint": "Use letters, digits and _ only, e.g. account or caller_name.",
    },
    "phone_destination": {
        "type": "string",
        "description": "An E.164 phone number such as +15550001111, or a SIP URI.",
        "anyOf": [{"pattern": E164_PATTERN}, {"pattern": SIP_URI_PATTERN}, {"pattern": r"\$\{"}],
        "x-hint": "Write a number as + country code and number (+15550001111) or a SIP "
        "address (sip:agent@example.com).",
    },
    "phrases": {
        "type": "array",
        "items": {"type": "string", "minLength": 1},
        "minItems": 1,
        "description": "Words or phrases the caller may say.",
    },
    "event_handler": {
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "description": "What to do the Nth time: say something and ask again, or go on.",
        "properties": {
            "reprompt": {"$ref": "#/$defs/template", "description": "Say this, then ask again."},
            "say": {"$ref": "#/$defs/template", "description": "Say this before going on."},
            "next": {"$ref": "#/$defs/node_ref", "description": "Go to this node."},
        },
    },
    "event_handlers": {
        "type": "array",
        "minItems": 1,
        "items": {"$ref": "#/$defs/event_handler"},
        "description": "Handlers used in order: the first time, the second time, ... The "
        "last one is used again after the list runs out.",
    },
    "retry": {
        "type": "object",
        "additionalProperties": False,
        "description": "Try again on failure before taking on_error.",
        "properties": {
            "max_attempts": {"type": "integer", "minimum": 1, "maximum": 20},
            "backoff": {
                "$ref": "#/$defs/duration",
                "description": "Wait before the first retry (doubles).",
            },
        },
    },
    "settings": _SETTINGS,
    "variable": {
        "type": "object",
        "additionalProperties": False,
        "description": "A flow variable with its starting value.",
        "properties": {
            "default": {"description": "The value before anything sets it."},
            "type": {
                "enum": ["string", "number", "integer", "boolean", "object", "array", "null"],
                "description": "The JSON Schema type the value must have.",
            },
            "description": {"type": "string"},
        },
    },
}

# Fields the engine gives every node type, and those it adds to nodes that run
# as activities (they talk to the world, so they can fail and be retried).
COMMON_NODE_FIELDS: dict[str, Any] = {
    "description": {"type": "string", "description": "A note for people reading the flow."},
    "max_visits": {
        "type": "integer",
        "minimum": 1,
        "description": f"How many times one call may enter this node (default {DEFAULT_MAX_VISITS}).",
    },
}
ACTIVITY_NODE_FIELDS: dict[str, Any] = {
    "on_error": {
        "$ref": "#/$defs/node_ref",
        "description": "Where to go if this node fails (after its retries).",
    },
    "timeout": {"$ref": "#/$defs/duration", "description": "The longest this node may take."},
    "retry": {"$ref": "#/$defs/retry"},
}


def node_type_schema(node_type: Any) -> dict[str, Any]:
    """The full schema of one node type: the engine's common fields plus the plugin's."""
    plugin_schema = copy.deepcopy(dict(node_type.schema))
    properties: dict[str, Any] = {
        "type": {"const": node_type.name, "description": node_type.summary},
        **COMMON_NODE_FIELDS,
    }
    if node_type.runs_in == "activity":
        properties.update(ACTIVITY_NODE_FIELDS)
    properties.update(plugin_schema.pop("properties", {}))
    required = ["type", *plugin_schema.pop("required", [])]
    schema: dict[str, Any] = {
        "type": "object",
        "title": node_type.name,
        "description": node_type.doc.strip(),
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }
    plugin_schema.pop("type", None)
    plugin_schema.pop("additionalProperties", None)
    schema.update(plugin_schema)  # e.g. a plugin's own allOf or dependentRequired
    return schema


@functools.lru_cache(maxsize=8)
def flow_schema(registry: PluginRegistry) -> dict[str, Any]:
    """The flow file schema for these plugins (cached: do not modify the result)."""
    node_types = list(registry)
    defs = copy.deepcopy(BASE_DEFS)
    defs["node_types"] = {t.name: node_type_schema(t) for t in node_types}
    defs["node"] = {
        "type": "object",
        "description": "One step of the call. 'type' says what it does.",
        "required": ["type"],
        "properties": {
            "type": {
                "enum": [t.name for t in node_types],
                "description": "What this node does.",
            }
        },
        "allOf": [
            {
                "if": {"properties": {"type": {"const": t.name}}, "required": ["type"]},
                "then": {"$ref": f"#/$defs/node_types/{t.name}"},
            }
            for t in node_types
        ],
    }
    return {
        "$schema": DRAFT,
        "$id": f"{SCHEMA_BASE_URL}/flow.schema.json",
        "title": "voxflow call flow",
        "description": "A phone call described as nodes: what to say, what to ask, where to go.",
        "type": "object",
        "required": ["flow", "start", "nodes"],
        "additionalProperties": False,
        "properties": {
            "flow": {
                "type": "string",
                "pattern": ID_PATTERN,
                "description": "The flow's id, used by triggers and subflows.",
                "x-hint": "Use letters, digits, - and _, starting with a letter.",
            },
            "description": {"type": "string", "description": "What this call is for."},
            "settings": {"$ref": "#/$defs/settings"},
            "variables": {
                "type": "object",
                "description": "Variables of the call, with their starting values.",
                "propertyNames": {"pattern": NAME_PATTERN},
                "additionalProperties": {"$ref": "#/$defs/variable"},
            },
            "error_handler": {
                "$ref": "#/$defs/node_ref",
                "description": "Where to go when a node fails and has no on_error "
                "(default: apologise and hang up).",
            },
            "start": {"$ref": "#/$defs/node_ref", "description": "The first node of the call."},
            "nodes": {
                "type": "object",
                "minProperties": 1,
                "description": "The steps of the call, each under its id.",
                "propertyNames": {"pattern": ID_PATTERN},
                "additionalProperties": {"$ref": "#/$defs/node"},
            },
        },
        "$defs": defs,
    }


def trigger_schema() -> dict[str, Any]:
    time_range = {
        "type": "string",
        "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-4]):[0-5][0-9]$",
        "x-hint": "Write opening hours as HH:MM-HH:MM, for example 09:00-17:30.",
    }
    days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    return {
        "$schema": DRAFT,
        "$id": f"{SCHEMA_BASE_URL}/trigger.schema.json",
        "title": "voxflow trigger",
        "description": "Which flow answers calls to a phone number, and when.",
        "type": "object",
        "required": ["number", "flow"],
        "additionalProperties": False,
        "properties": {
            "number": {
                "type": "string",
                "pattern": E164_PATTERN,
                "description": "The phone number callers dial, as +<country code><number>.",
                "x-hint": "Write the number with + and the country code, e.g. +15551230000, in quotes.",
            },
            "flow": {"type": "string", "pattern": ID_PATTERN, "description": "The flow's id."},
            "carrier": {
                "enum": ["telnyx", "twilio"],
                "description": "Take calls to this number only through this carrier (default: through any).",
            },
            "description": {"type": "string"},
            "greeting_message": {"$ref": "#/$defs/template"},
            "language": _SETTINGS["properties"]["language"],
            "max_call_duration": _DURATION,
            "enable_recording": {"type": "boolean"},
            "voicemail_enabled": {"type": "boolean"},
            "voicemail_flow": {
                "type": "string",
                "pattern": ID_PATTERN,
                "description": "The flow that takes voicemail (used outside hours when "
                "outside_hours.action is voicemail).",
            },
            "business_hours": {
                "type": "object",
                "additionalProperties": False,
                "required": ["timezone", "schedule"],
                "properties": {
                    "timezone": {
                        "type": "string",
                        "description": "An IANA time zone such as America/New_York.",
                    },
                    "schedule": {
                        "type": "object",
                        "additionalProperties": False,
                        "propertyNames": {"enum": days},
                        "properties": {day: {"type": "array", "items": time_range} for day in days},
                    },
                    "holidays": {
                        "type": "array",
                        "items": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
                        "description": "Dates (YYYY-MM-DD) treated as outside hours.",
                    },
                    "outside_hours": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["action"],
                        "properties": {
                            "action": {"enum": ["message", "voicemail", "reject"]},
                            "message": {"$ref": "#/$defs/template"},
                        },
                    },
                },
            },
        },
        "$defs": {"template": BASE_DEFS["template"]},
    }


def write_schemas(registry: PluginRegistry, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in (("flow", flow_schema(registry)), ("trigger", trigger_schema())):
        path = out_dir / f"{name}.schema.json"
        path.write_text(schema_text(schema), encoding="utf-8")
        written.append(path)
    return written


def schema_text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
