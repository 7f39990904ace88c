"""Calls a web API (JSON in and out) and saves the answer.

The response is saved under ``save_as`` as ``status``, ``body`` (parsed JSON
when the answer is JSON, text otherwise) and ``headers``. A status of 400 or
more counts as a failure: the node retries as configured, then takes
``on_error``.

The ``url`` starts with ``https://`` (or ``http://``) and its host, written
out: the host never comes from a variable. Each ``${...}`` in it is
percent-encoded, so ``/callers/${caller_number}`` stays one path segment
whatever the caller's number holds; write ``${path | raw}`` to insert a value
as it is (it still cannot change the host). Pass other values with
``query:`` (``query: {number: "${caller_number}"}``), which encodes them too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from engine.plugin_api import (
    NODE_REF,
    TEMPLATE,
    URL,
    VARIABLE_NAME,
    AnswerProblem,
    NodeContext,
    NodeResult,
    Services,
    activity_services,
    url_origin,
)

# Answers larger than this are refused: a call needs a few fields, not a download.
MAX_RESPONSE_BYTES = 1_000_000

NODE_TYPE = "http_request"
DOC = __doc__ or ""
RUNS_IN = "activity"
OUTPUTS = {
    "status": "The HTTP status code, e.g. 200.",
    "body": "The answer: JSON data, or text.",
    "headers": "The response headers.",
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["url", "next"],
    "properties": {
        "method": {"enum": ["GET", "POST", "PUT", "PATCH", "DELETE"], "description": "Default GET."},
        "url": {
            **URL,
            "description": "The address to call: https:// and the host written out; "
            "each ${variable} in it is percent-encoded (${value | raw}: as it is).",
        },
        "headers": {
            "type": "object",
            "additionalProperties": TEMPLATE,
            "description": "Request headers, e.g. Authorization.",
        },
        "query": {
            "type": "object",
            "description": 'Query-string parameters, e.g. {number: "${caller_number}"}: the way '
            "to pass values (they are encoded).",
            "additionalProperties": {"type": ["string", "number", "boolean"]},
        },
        "body": {"description": "A JSON body; text in it may use ${variables}."},
        "save_as": {**VARIABLE_NAME, "description": "Save the response under this name."},
        "next": {**NODE_REF, "description": "Where to go after a successful call."},
    },
}


# A fixed answer in `voxflow test` / `voxflow chat --answers`: {status: 200, body: {...}}.
ANSWER_FIELDS = {
    "status": "The HTTP status code (default 200); 400 or more fails the node, as a real answer would.",
    "body": "The answer: JSON data, or text.",
    "headers": "The response headers.",
}


class HttpFailure(Exception):
    """The request failed (a status of 400 or more); retried as configured, then on_error."""


def simulated_outputs(answer: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """The outputs of a fixed answer, or its failure: a status of 400 or more fails, as in execute."""
    status = answer.get("status", 200)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise AnswerProblem("status", "'status' is an HTTP status code such as 200 or 503.")
    headers = answer.get("headers") or {}
    if not isinstance(headers, Mapping):
        raise AnswerProblem("headers", "'headers' is a set of 'name: value' lines.")
    if status >= 400:
        raise HttpFailure(f"{config.get('method') or 'GET'} {config.get('url', '')} answered {status}")
    return {"status": status, "body": answer.get("body"), "headers": dict(headers)}


def describe(config: Mapping[str, Any]) -> str:
    """A few words for diagrams."""
    return f"{config.get('method', 'GET')} {config.get('url', '')}".strip()


async def execute(config: Mapping[str, Any], context: NodeContext, services: Services) -> NodeResult:
    # Templates in url, headers and body are already filled in by the runtime;
    # ``timeout`` is enforced by the runtime too (and here, for the socket).
    runtime = activity_services(services, ("http_session",), NODE_TYPE)
    url = str(config["url"])  # filled in by the runtime as a URL (engine.language.templates.render_url)
    if url_origin(url, whole=True) is None:
        raise ValueError(f"the url must start with http:// or https:// and a host, not '{url[:40]}'")
    session = await runtime.http_session()
    kwargs: dict[str, Any] = {
        "headers": {str(k): str(v) for k, v in (config.get("headers") or {}).items()},
        "params": {str(k): _query_value(v) for k, v in (config.get("query") or {}).items()},
    }
    if config.get("body") is not None:
        kwargs["json"] = config["body"]
    if config.get("timeout") is not None:
        import aiohttp  # here, not at the top: `voxflow validate` loads every plugin

        kwargs["timeout"] = aiohttp.ClientTimeout(total=float(config["timeout"]))
    method = str(config.get("method") or "GET")
    from yarl import URL as Address  # aiohttp's own; encoded=True: sent exactly as rendered

    async with session.request(method, Address(url, encoded=True), **kwargs) as response:
        raw = await response.content.read(MAX_RESPONSE_BYTES + 1)
        if len(raw) > MAX_RESPONSE_BYTES:
            raise HttpFailure(f"the answer from {url} is larger than {MAX_RESPONSE_BYTES} bytes")
        text = raw.decode(response.charset or "utf-8", errors="replace")
        status = response.status
        reason = response.reason or ""
        headers = {key: value for key, value in response.headers.items()}
    body = _parse_body(text, headers.get("Content-Type", ""))
    if status >= 400:
        snippet = text.strip()[:200]
        raise HttpFailure(
            f"{method} {url} answered {status} {reason}".rstrip() + (f": {snippet}" if snippet else "")
        )
    return NodeResult(exit="next", outputs={"status": status, "body": body, "headers": headers})


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _parse_body(text: str, content_type: str) -> Any:
    """JSON data when the answer is JSON, otherwise the text."""
    looks_json = "json" in content_type.lower() or text.lstrip()[:1] in ("{", "[")
    if looks_json and text.strip():
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text
