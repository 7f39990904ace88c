"""Asks a large language model (any OpenAI-compatible chat endpoint) and saves its reply.

The endpoint, model and key come from configuration (``VOXFLOW_LLM_BASE_URL``,
``VOXFLOW_LLM_MODEL``, ``VOXFLOW_LLM_API_KEY`` or OpenAI's own variables), so
OpenAI, a local server or any compatible service works; ``model`` here
overrides the configured one for this node.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from engine.plugin_api import (
    NODE_REF,
    TEMPLATE,
    VARIABLE_NAME,
    NodeContext,
    NodeResult,
    Services,
    VoxflowError,
    activity_services,
)

# Statuses worth retrying (the endpoint is busy or briefly down); other 4xx
# answers mean the request or the configuration is wrong, and retrying is useless.
_RETRYABLE = {408, 409, 429}

NODE_TYPE = "llm"
DOC = __doc__ or ""
RUNS_IN = "activity"
OUTPUTS = {"text": "The model's reply."}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["prompt", "next"],
    "properties": {
        "prompt": {**TEMPLATE, "description": "What to ask the model; may use ${variables}."},
        "system": {**TEMPLATE, "description": "Instructions for the model's role and style."},
        "model": {"type": "string", "minLength": 1, "description": "The model to use."},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "max_tokens": {"type": "integer", "minimum": 1, "maximum": 100000},
        "save_as": {**VARIABLE_NAME, "description": "Save the reply under this name (.text)."},
        "next": {**NODE_REF, "description": "Where to go with the reply."},
    },
}


# A fixed answer in `voxflow test` / `voxflow chat --answers`: {text: balance}.
ANSWER_FIELDS = {"text": "The model's reply."}


def simulated_outputs(answer: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """The outputs of a fixed answer: its reply, from no model."""
    return {"text": str(answer.get("text", "")), "model": "fixed answer"}


class LlmFailure(Exception):
    """The endpoint failed in a way that may pass: retried as configured, then on_error."""


async def execute(config: Mapping[str, Any], context: NodeContext, services: Services) -> NodeResult:
    runtime = activity_services(services, ("http_session", "llm"), NODE_TYPE)
    settings = runtime.llm()
    host = urlparse(settings.base_url).hostname or settings.base_url
    if not settings.api_key and host.endswith("openai.com"):
        raise VoxflowError(
            "no API key is configured for the LLM endpoint: set VOXFLOW_LLM_API_KEY (or "
            "OPENAI_API_KEY), or point VOXFLOW_LLM_BASE_URL at a server that needs none."
        )
    messages = []
    if config.get("system"):
        messages.append({"role": "system", "content": str(config["system"])})
    messages.append({"role": "user", "content": str(config["prompt"])})
    request: dict[str, Any] = {"model": config.get("model") or settings.model, "messages": messages}
    for name in ("temperature", "max_tokens"):
        if config.get(name) is not None:
            request[name] = config[name]
    headers = {"Authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}
    url = f"{settings.base_url}/chat/completions"
    session = await runtime.http_session()
    async with session.post(url, json=request, headers=headers) as response:
        status = response.status
        try:
            data = await response.json(content_type=None)
        except ValueError:
            data = None
    if status >= 400:
        problem = _error_message(data) or f"HTTP {status}"
        where = f"the LLM endpoint {settings.base_url} (model {request['model']})"
        if status in (401, 403):
            raise VoxflowError(f"{where} refused the API key: {problem}. Check VOXFLOW_LLM_API_KEY.")
        if status < 500 and status not in _RETRYABLE:
            raise VoxflowError(f"{where} rejected the request: {problem}")
        raise LlmFailure(f"{where} answered {status}: {problem}")
    text = _reply_text(data)
    if text is None:
        raise LlmFailure(f"the LLM endpoint {settings.base_url} answered without a reply text")
    model = data.get("model", request["model"]) if isinstance(data, dict) else request["model"]
    return NodeResult(exit="next", outputs={"text": text, "model": model})


def _reply_text(data: Any) -> str | None:
    try:
        content = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return None
    return content if isinstance(content, str) else None


def _error_message(data: Any) -> str:
    """OpenAI-style errors are {"error": {"message": ...}}; others vary."""
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
    return ""
