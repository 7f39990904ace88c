"""A local server that imitates ElevenLabs' text-to-speech API, on its real wire format.

It stands in for ``api.elevenlabs.io``, which the tests cannot reach, and
speaks what livekit-plugins-elevenlabs sends and parses:

- WebSocket ``/v1/text-to-speech/{voice_id}/multi-stream-input?model_id=...&
  output_format=pcm_16000&auto_mode=true&...`` with the ``xi-api-key`` header
  (a wrong key: HTTP 401 and ElevenLabs' ``{"detail": {"status", "message"}}``
  body). In: ``{"text": " ", "voice_settings": {...}, "generation_config":
  {"chunk_length_schedule": [...]}, "context_id": c}`` opens a context (the
  init message); ``{"text": "...", "context_id": c, "flush": true?}`` adds
  text; ``{"context_id": c, "close_context": true}`` finishes it;
  ``{"close_socket": true}`` ends all. Out: ``{"audio": <base64 PCM>,
  "normalizedAlignment": {"chars", "charStartTimesMs", "charDurationsMs"},
  "alignment": {...}, "contextId": c}`` per chunk, then ``{"isFinal": true,
  "contextId": c}`` when a closed context's audio is all out.
- When it generates, as ElevenLabs documents it: with ``auto_mode=true`` no
  buffering (each text message is generated as it comes); otherwise text is
  buffered until it reaches the next length of the context's
  ``chunk_length_schedule`` (ElevenLabs' default 120, 160, 250, 290
  characters), or a ``flush``, or the context's close.
- HTTP ``POST /v1/text-to-speech/{voice_id}/stream?output_format=pcm_16000&
  optimize_streaming_latency=...`` with a JSON body (``text``, ``model_id``,
  ``voice_settings``...) answers the audio as a chunked ``audio/pcm`` stream.

The voice is espeak-ng's (engine.agent.espeak), resampled to the asked rate
and streamed as espeak makes it (a generation's first audio does not wait for
its last). Only the ``pcm_*`` output formats are made (what voxflow asks
for): others get ElevenLabs' error message shape. ``ElevenLabsState``
records every socket (query, messages in, generations with the time each
began and sent its first audio) and HTTP request.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from engine.agent import espeak, wav

CHUNK_SECONDS = 0.2
DEFAULT_SCHEDULE = (120, 160, 250, 290)


@dataclass
class ElevenLabsState:
    api_key: str
    # per socket: query, voice_id, messages in, generations (context, text, began, first_audio)
    sockets: list[dict[str, Any]] = field(default_factory=list)
    http_requests: list[dict[str, Any]] = field(default_factory=list)
    spoken: list[str] = field(default_factory=list)  # each text synthesised, in order


def _unauthorised() -> web.Response:
    return web.json_response(
        {"detail": {"status": "invalid_api_key", "message": "Invalid API key"}}, status=401
    )


def _rate(output_format: str) -> int | None:
    kind, _, rate = output_format.partition("_")
    return int(rate) if kind == "pcm" and rate.isdigit() else None


async def _speech(state: ElevenLabsState, text: str, rate: int) -> bytes:
    state.spoken.append(text)
    pcm, source_rate = await asyncio.to_thread(espeak.synthesize_pcm, text)
    return wav.resample(pcm, source_rate, rate)


async def _speech_chunks(state: ElevenLabsState, text: str, rate: int) -> AsyncIterator[bytes]:
    """``text`` spoken, in pieces of CHUNK_SECONDS at ``rate``, each as soon as espeak has made it."""
    state.spoken.append(text)
    loop = asyncio.get_running_loop()
    pieces: asyncio.Queue[bytes | None] = asyncio.Queue()
    source_rate = espeak.sample_rate()
    size = int(source_rate * CHUNK_SECONDS) * 2
    buffer = bytearray()

    def made(chunk: bytes) -> bool:
        buffer.extend(chunk)
        while len(buffer) >= size:
            loop.call_soon_threadsafe(pieces.put_nowait, bytes(buffer[:size]))
            del buffer[:size]
        return True

    def run() -> None:
        try:
            espeak.synthesize(text, espeak.Voice(), made)
            if buffer:
                loop.call_soon_threadsafe(pieces.put_nowait, bytes(buffer))
        finally:
            loop.call_soon_threadsafe(pieces.put_nowait, None)

    worker = asyncio.ensure_future(asyncio.to_thread(run))
    while (piece := await pieces.get()) is not None:
        yield wav.resample(piece, source_rate, rate)
    await worker


def _alignment(text: str, seconds: float) -> dict[str, Any]:
    chars = list(text)
    step = int(seconds * 1000 / max(len(chars), 1))
    return {
        "chars": chars,
        "charStartTimesMs": [i * step for i in range(len(chars))],
        "charDurationsMs": [step] * len(chars),
    }


def build_app(state: ElevenLabsState) -> web.Application:
    async def multi_stream(request: web.Request) -> web.StreamResponse:
        if request.headers.get("xi-api-key") != state.api_key:
            return _unauthorised()
        rate = _rate(request.query.get("output_format", "mp3_44100_128"))
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        record: dict[str, Any] = {
            "voice_id": request.match_info["voice_id"],
            "query": dict(request.query),
            "messages": [],
        }
        state.sockets.append(record)
        record["generations"] = []
        auto_mode = request.query.get("auto_mode", "false") == "true"
        buffers: dict[str, str] = {}
        schedules: dict[str, list[int]] = {}
        send_lock = asyncio.Lock()
        loop = asyncio.get_running_loop()

        async def speak(context: str, text: str, final: bool) -> None:
            async with send_lock:
                if text.strip() and rate is not None:
                    generation = {"context": context, "text": text.strip(), "began": loop.time()}
                    record["generations"].append(generation)
                    first = True
                    async for chunk in _speech_chunks(state, text.strip(), rate):
                        if first:
                            generation["first_audio"] = loop.time()
                        alignment = _alignment(text.strip() if first else "", len(chunk) / 2 / rate)
                        first = False
                        await ws.send_str(
                            json.dumps(
                                {
                                    "audio": base64.b64encode(chunk).decode(),
                                    "normalizedAlignment": alignment,
                                    "alignment": alignment,
                                    "contextId": context,
                                }
                            )
                        )
                if final:
                    await ws.send_str(json.dumps({"isFinal": True, "contextId": context}))

        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            data = json.loads(message.data)
            record["messages"].append(data)
            if data.get("close_socket"):
                break
            context = str(data.get("context_id") or "")
            if rate is None:
                await ws.send_str(
                    json.dumps({"error": "unsupported output format: only pcm_* here", "contextId": context})
                )
                continue
            if data.get("close_context"):
                await speak(context, buffers.pop(context, ""), final=True)
                continue
            if context not in schedules:  # the init message
                config = data.get("generation_config") or {}
                schedules[context] = list(config.get("chunk_length_schedule") or DEFAULT_SCHEDULE)
            buffers[context] = buffers.get(context, "") + str(data.get("text", ""))
            text = buffers[context]
            schedule = schedules[context]
            if not text.strip():
                continue
            if auto_mode or data.get("flush") or len(text) >= schedule[0]:
                buffers[context] = ""
                if len(schedule) > 1 and not auto_mode and not data.get("flush"):
                    schedule.pop(0)  # the next generation waits for the next length
                await speak(context, text, final=False)
        await ws.close()
        return ws

    async def stream(request: web.Request) -> web.StreamResponse:
        if request.headers.get("xi-api-key") != state.api_key:
            return _unauthorised()
        body = await request.json()
        state.http_requests.append(
            {"voice_id": request.match_info["voice_id"], "query": dict(request.query), "body": body}
        )
        rate = _rate(request.query.get("output_format", "mp3_44100_128"))
        if rate is None:
            return web.json_response(
                {"detail": {"status": "invalid_output_format", "message": "only pcm_* here"}}, status=400
            )
        pcm = await _speech(state, str(body.get("text", "")), rate)
        response = web.StreamResponse(headers={"Content-Type": "audio/pcm"})
        await response.prepare(request)
        size = int(rate * CHUNK_SECONDS) * 2
        for start in range(0, len(pcm), size):
            await response.write(pcm[start : start + size])
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/v1/text-to-speech/{voice_id}/multi-stream-input", multi_stream)
    app.router.add_post("/v1/text-to-speech/{voice_id}/stream", stream)
    return app


async def start(state: ElevenLabsState) -> tuple[web.AppRunner, str]:
    """Serve on 127.0.0.1 (a free port); the runner (cleanup() it) and the API base URL."""
    runner = web.AppRunner(build_app(state))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/v1"
