"""A local web server the runtime tests call: plain JSON APIs and an OpenAI-style LLM.

Real HTTP on 127.0.0.1 through aiohttp, so the ``http_request`` and ``llm``
plugins are exercised over the wire. ``/v1/chat/completions`` speaks the
OpenAI chat completions wire format (request: model, messages, temperature,
max_tokens; answer: choices[0].message.content; errors: {"error": {"message"}}),
standing in for OpenAI, which the tests cannot reach.

Endpoints keep per-key state (hit counts, started/finished requests) that a
test reads from another thread, hence the lock and the threading events.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

LLM_KEY = "test-llm-key"


@dataclass
class WebState:
    lock: threading.Lock = field(default_factory=threading.Lock)
    hits: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    started: dict[str, threading.Event] = field(default_factory=lambda: defaultdict(threading.Event))
    finished: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    cancelled: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    llm_requests: list[dict[str, Any]] = field(default_factory=list)

    def hit(self, key: str) -> int:
        with self.lock:
            self.hits[key] += 1
            return self.hits[key]

    def count(self, table: dict[str, int], key: str) -> int:
        with self.lock:
            return table.get(key, 0)

    def mark(self, table: dict[str, int], key: str) -> None:
        with self.lock:
            table[key] += 1

    def started_event(self, key: str) -> threading.Event:
        with self.lock:
            return self.started[key]


def build_app(state: WebState) -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else None
        return web.json_response(
            {
                "method": request.method,
                "path": request.path,
                "raw_path": request.raw_path,
                "query": dict(request.query),
                "header": request.headers.get("X-Test", ""),
                "body": body,
            }
        )

    async def flaky(request: web.Request) -> web.Response:
        # Fails with 500 for the first `fail` hits of a key, then answers 200.
        key = request.match_info["key"]
        attempt = state.hit(key)
        if attempt <= int(request.query.get("fail", "0")):
            return web.json_response({"error": "try later"}, status=500)
        return web.json_response({"ok": True, "attempt": attempt})

    async def slow(request: web.Request) -> web.Response:
        # Answers after `seconds`; a key's first `hang` hits never answer on
        # their own (until the client goes away), later hits answer at once.
        key = request.match_info["key"]
        attempt = state.hit(key)
        state.started_event(key).set()
        seconds = float(request.query.get("seconds", "0"))
        if attempt <= int(request.query.get("hang", "0")):
            seconds = 120.0
        try:
            await _sleep_unless_gone(request, seconds)
        except asyncio.CancelledError:
            state.mark(state.cancelled, key)
            raise
        if request.transport is None or request.transport.is_closing():
            state.mark(state.cancelled, key)
            return web.Response(status=499)
        state.mark(state.finished, key)
        return web.json_response({"slept": seconds, "attempt": attempt})

    async def chat(request: web.Request) -> web.Response:
        data = await request.json()
        with state.lock:
            state.llm_requests.append({"json": data, "auth": request.headers.get("Authorization")})
        if request.headers.get("Authorization") != f"Bearer {LLM_KEY}":
            return web.json_response(
                {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}},
                status=401,
            )
        user = next(m["content"] for m in reversed(data["messages"]) if m["role"] == "user")
        return web.json_response(
            {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "model": data["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": f"You asked: {user}"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10},
            }
        )

    app = web.Application()
    app.router.add_route("*", "/echo", echo)
    app.router.add_route("*", "/echo/{tail:.*}", echo)
    app.router.add_get("/flaky/{key}", flaky)
    app.router.add_get("/slow/{key}", slow)
    app.router.add_post("/v1/chat/completions", chat)
    return app


async def _sleep_unless_gone(request: web.Request, seconds: float) -> None:
    """Sleep, but stop early when the client disconnects (aiohttp no longer cancels us)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        if request.transport is None or request.transport.is_closing():
            return
        await asyncio.sleep(min(0.05, deadline - loop.time()))


async def start_web(state: WebState) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(build_app(state), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"
