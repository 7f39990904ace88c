"""The JSON Schema of conversation test files (``flows/tests/*.test.yaml``).

It checks the shape; engine.simulate.conversation checks the rest (turns,
node names, fixed answers against the flow) and turns both into
source-mapped diagnostics. ``x-hint`` texts are shown as the fix.
"""

from __future__ import annotations

from typing import Any

from engine.language.schema import E164_PATTERN, ID_PATTERN, NAME_PATTERN
from engine.runtime.messages import CALL_STATUSES

# A node of the test's flow ("lookup"), or of a flow it calls ("account-balance/lookup").
NODE_KEY_PATTERN = r"^([A-Za-z][A-Za-z0-9_-]*/)?[A-Za-z][A-Za-z0-9_-]*$"
NODE_KEY_HINT = (
    "Write a node id of the flow, e.g. lookup, or flow/node for a node of a flow "
    "it calls, e.g. account-balance/lookup."
)

_PHONE: dict[str, Any] = {
    "type": "string",
    "pattern": E164_PATTERN,
    "description": "A phone number written as +<country code><number>.",
    "x-hint": 'Write the number with + and the country code, in quotes: "+15551234567".',
}
_NODE_LIST: dict[str, Any] = {
    "type": "array",
    "items": {"type": "string", "pattern": NODE_KEY_PATTERN, "x-hint": NODE_KEY_HINT},
    "x-hint": "Write a list of node ids: [greet, ask].",
}
_ANSWERS: dict[str, Any] = {
    "type": "object",
    "description": "Fixed answers of the nodes that call outside services, by node id.",
    "propertyNames": {"pattern": NODE_KEY_PATTERN},
    "additionalProperties": {
        "type": "object",
        "x-hint": "An answer is a set of 'name: value' lines: the fields of a fixed answer "
        "that 'voxflow docs' lists for the node's type (e.g. {status: 200, body: {...}}), "
        '{outputs: {...}} for any node, or {error: "..."} to make the node fail.',
    },
}
_SETUP: dict[str, Any] = {
    "flow": {
        "type": "string",
        "pattern": ID_PATTERN,
        "description": "The flow to call: the name on its 'flow:' line.",
    },
    "caller": {**_PHONE, "description": "The caller's number (default +15551234567)."},
    "called": {**_PHONE, "description": "The number dialled."},
    "variables": {
        "type": "object",
        "propertyNames": {"pattern": NAME_PATTERN},
        "description": "Values for the flow's variables, e.g. {caller_name: Sam}.",
    },
    "answers": _ANSWERS,
    "failing_transfers": {
        "type": "array",
        "items": {"type": "string"},
        "description": "Transfer destinations that fail (busy), to test a transfer's on_error.",
    },
}
_EXPECT: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "description": "How the call must have gone.",
    "properties": {
        "status": {
            "enum": list(CALL_STATUSES),
            "description": "How the call ended.",
        },
        "reason_contains": {"type": "string", "description": "Words in the ending's reason."},
        "path": {**_NODE_LIST, "description": "Every node of the test's flow, in order."},
        "reached": {**_NODE_LIST, "description": "Nodes the call must have reached."},
        "not_reached": {**_NODE_LIST, "description": "Nodes the call must not have reached."},
        "variables": {
            "type": "object",
            "description": "Variables and their values at the end (others are not compared).",
        },
        "transferred_to": {"type": "string", "description": "Where the call was transferred."},
        "hung_up": {
            "type": "boolean",
            "description": "true: the flow hung up on the caller; false: it did not.",
        },
    },
}
TEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "turns"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "description": "What the test shows."},
        **_SETUP,
        "turns": {
            "type": "array",
            "description": "The conversation, in order: what the agent says and the caller does.",
            "items": {
                "type": ["object", "string"],
                "x-hint": "Write a turn such as '- agent: Hello', '- caller: my balance', "
                "'- press: \"1\"', '- silence: 7', '- no_answer' or '- hangup'.",
            },
        },
        "expect": _EXPECT,
        "timeout": {
            "type": "number",
            "exclusiveMinimum": 0,
            "description": "Real seconds after which the test gives up (default 60).",
        },
    },
}
FILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["tests"],
    "properties": {
        **_SETUP,
        "tests": {
            "type": "array",
            "minItems": 1,
            "items": TEST_SCHEMA,
            "description": "The tests, each starting with '- name:'.",
            "x-hint": "Write each test as a list item: '- name: ...' followed by its turns.",
        },
    },
}
ANSWERS_FILE_SCHEMA: dict[str, Any] = _ANSWERS
