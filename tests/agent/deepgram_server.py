"""A local server that imitates Deepgram's live transcription API, on its real wire format.

It stands in for ``wss://api.deepgram.com/v1/listen``, which the tests cannot
reach, and speaks what livekit-plugins-deepgram sends and parses:

- the WebSocket upgrade carries the options as query parameters (``model``,
  ``encoding=linear16``, ``sample_rate``, ``channels``, ``interim_results``,
  ``vad_events``, ``endpointing`` in ms, ``keyterm`` repeated, ``language``...)
  and ``Authorization: Token <key>``; a wrong key is refused with HTTP 401 and
  Deepgram's error body;
- in: binary frames of raw linear16 audio; text frames ``{"type": "KeepAlive"}``,
  ``{"type": "Finalize"}`` (finish what was heard: a final result with
  ``from_finalize``) and ``{"type": "CloseStream"}`` (finish, send Metadata, close);
- out: ``{"type": "SpeechStarted", "channel": [0], "timestamp": s}`` when speech
  begins (with ``vad_events``); ``{"type": "Results", ...}`` with ``channel_index``,
  ``start``, ``duration``, ``is_final``, ``speech_final``, ``from_finalize``,
  ``channel.alternatives[0]`` (``transcript``, ``confidence``, ``words`` with
  ``word``, ``start``, ``end``, ``confidence``, ``punctuated_word``) and
  ``metadata`` (``request_id``, ``model_info``, ``model_uuid``): interim results
  while the caller talks (with ``interim_results``), and a final one with
  ``speech_final`` once ``endpointing`` ms of the audio received are silent;
  ``{"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": s}`` once
  ``utterance_end_ms`` of audio have passed after the last word (with
  ``utterance_end_ms``); ``{"type": "Metadata", ...}`` at the close.

Endpointing is honest: the silence is counted on the audio as it arrives (in
real time from a caller), so ``speech_final`` comes ``endpointing`` ms after
the speech ends, plus the recognition's own time, as Deepgram's does.

The recognition itself is pocketsphinx (engine.agent.sphinx, in its
recogniser process so this server's loop, and a test's audio beside it, never
stall), with the ``keyterm`` list (or the ``keywords``, without their
intensifiers) as its grammar: Deepgram's key term prompting, made strict. A
segment that makes no phrase gets pocketsphinx's free-form guess with
confidence 0, as a rejection. Speech is found by energy (10 ms windows above
-40 dBFS).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import WSMsgType, web

from engine.agent import sphinx, wav

SPEECH_DBFS = -40.0
INTERIM_EVERY = 0.3  # seconds of speech between interim results
MODEL_INFO = {"name": "general-nova-3", "version": "2025-01-01.0", "arch": "nova-3"}


@dataclass
class Connection:
    query: dict[str, list[str]]
    authorization: str
    control: list[str] = field(default_factory=list)  # KeepAlive / Finalize / CloseStream seen
    audio_bytes: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class DeepgramState:
    api_key: str
    connections: list[Connection] = field(default_factory=list)

    def results(self, final: bool | None = None) -> list[dict[str, Any]]:
        found = [m for c in self.connections for m in c.sent if m["type"] == "Results"]
        return [m for m in found if final is None or m["is_final"] == final]


class _Stream:
    """One connection's audio: where speech is, what to send about it."""

    def __init__(self, ws: web.WebSocketResponse, conn: Connection) -> None:
        query = conn.query
        self.ws, self.conn = ws, conn
        self.rate = int(query.get("sample_rate", ["16000"])[0])
        self.interim = query.get("interim_results", ["false"])[0] == "true"
        self.vad_events = query.get("vad_events", ["false"])[0] == "true"
        endpointing = query.get("endpointing", ["10"])[0]
        self.endpointing = 0.01 if endpointing == "false" else max(int(endpointing), 10) / 1000
        keywords = tuple(word.rsplit(":", 1)[0] for word in query.get("keywords", []))
        self.phrases = tuple(query.get("keyterm", [])) or keywords
        utterance_end = query.get("utterance_end_ms", [None])[0]
        self.utterance_end = int(utterance_end) / 1000 if utterance_end else None
        self.last_word_end: float | None = None  # owed an UtteranceEnd after this
        self.request_id = str(uuid.uuid4())
        self.audio = bytearray()  # everything received
        self.speech_from: int | None = None  # sample where the current speech began
        self.silent_since: int | None = None
        self.next_interim = 0.0
        self.lock = asyncio.Lock()
        # Recognitions run one at a time, in order, off the receiving loop.
        self.jobs: asyncio.Queue[tuple[Any, ...] | None] = asyncio.Queue()
        self.worker = asyncio.ensure_future(self._work())

    @property
    def samples(self) -> int:
        return len(self.audio) // 2

    async def push(self, data: bytes) -> None:
        start = self.samples
        self.audio.extend(data)
        window = self.rate // 100
        for at in range(start - start % window, self.samples - window + 1, window):
            chunk = np.frombuffer(bytes(self.audio[at * 2 : (at + window) * 2]), dtype=np.int16)
            loud = wav.window_levels(chunk, self.rate).max(initial=-120.0) > SPEECH_DBFS
            await self._window(at, loud)

    async def _window(self, at: int, loud: bool) -> None:
        if loud:
            self.silent_since = None
            if self.speech_from is None:
                self.speech_from = at
                self.next_interim = at / self.rate + INTERIM_EVERY
                if self.vad_events:
                    await self.send(
                        {"type": "SpeechStarted", "channel": [0], "timestamp": round(at / self.rate, 3)}
                    )
            elif self.interim and at / self.rate >= self.next_interim and self.jobs.empty():
                self.next_interim = at / self.rate + INTERIM_EVERY
                self.jobs.put_nowait((self.speech_from, at, False, False, False))
            return
        if self.speech_from is None:
            if (
                self.utterance_end is not None
                and self.last_word_end is not None
                and at / self.rate - self.last_word_end >= self.utterance_end
            ):
                last, self.last_word_end = self.last_word_end, None
                # In order: after the final result of those words, as Deepgram sends it.
                self.jobs.put_nowait(("utterance_end", last))
            return
        if self.silent_since is None:
            self.silent_since = at
        if (at - self.silent_since) / self.rate >= self.endpointing:
            begin, self.speech_from = self.speech_from, None
            self.last_word_end, self.silent_since = self.silent_since / self.rate, None
            self.jobs.put_nowait((begin, at, True, True, False))

    async def finish(self, *, from_finalize: bool) -> None:
        """Finalize / CloseStream: whatever speech is pending becomes a final result."""
        if self.speech_from is not None:
            begin, self.speech_from = self.speech_from, None
            self.jobs.put_nowait((begin, self.samples, True, True, from_finalize))
        self.jobs.put_nowait(None)
        await self.worker
        self.worker = asyncio.ensure_future(self._work())

    async def _work(self) -> None:
        while (job := await self.jobs.get()) is not None:
            if job[0] == "utterance_end":
                await self.send(
                    {"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": round(job[1], 3)}
                )
                continue
            begin, end, final, speech_final, from_finalize = job
            await self.result(begin, end, final=final, speech_final=speech_final, from_finalize=from_finalize)

    async def result(
        self, begin: int, end: int, *, final: bool, speech_final: bool = False, from_finalize: bool = False
    ) -> None:
        pcm = wav.resample(bytes(self.audio[begin * 2 : end * 2]), self.rate, sphinx.SAMPLE_RATE)
        heard = await sphinx.recognize_elsewhere(pcm, self.phrases)
        start, duration = begin / self.rate, (end - begin) / self.rate
        text = heard.transcript
        words = text.split()
        step = duration / max(len(words), 1)
        message = {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": round(duration, 3),
            "start": round(start, 3),
            "is_final": final,
            "speech_final": speech_final,
            "from_finalize": from_finalize,
            "channel": {
                "alternatives": [
                    {
                        "transcript": text,
                        "confidence": heard.confidence if text else 0.0,
                        "words": [
                            {
                                "word": w.lower(),
                                "start": round(start + i * step, 3),
                                "end": round(start + (i + 1) * step, 3),
                                "confidence": heard.confidence,
                                "punctuated_word": w,
                            }
                            for i, w in enumerate(words)
                        ],
                    }
                ]
            },
            "metadata": {
                "request_id": self.request_id,
                "model_info": MODEL_INFO,
                "model_uuid": "00000000-0000-4000-8000-000000000003",
            },
        }
        await self.send(message)

    async def send(self, message: dict[str, Any]) -> None:
        async with self.lock:
            if not self.ws.closed:
                try:
                    await self.ws.send_str(json.dumps(message))
                except ConnectionError:
                    return  # the client went away (a reconnect): nothing more to say
                self.conn.sent.append(message)

    def close(self) -> None:
        self.worker.cancel()


def build_app(state: DeepgramState) -> web.Application:
    async def listen(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Token {state.api_key}":
            return web.json_response(
                {
                    "err_code": "INVALID_AUTH",
                    "err_msg": "Invalid credentials.",
                    "request_id": str(uuid.uuid4()),
                },
                status=401,
            )
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = Connection(
            {k: request.query.getall(k) for k in request.query}, request.headers["Authorization"]
        )
        state.connections.append(conn)
        stream = _Stream(ws, conn)
        opened = time.time()
        async for message in ws:
            if message.type == WSMsgType.BINARY:
                conn.audio_bytes += len(message.data)
                await stream.push(message.data)
            elif message.type == WSMsgType.TEXT:
                kind = json.loads(message.data).get("type", "")
                conn.control.append(kind)
                if kind == "Finalize":
                    await stream.finish(from_finalize=True)
                elif kind == "CloseStream":
                    await stream.finish(from_finalize=False)
                    await stream.send(
                        {
                            "type": "Metadata",
                            "transaction_key": "deprecated",
                            "request_id": stream.request_id,
                            "sha256": "",
                            "created": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(opened)),
                            "duration": round(stream.samples / stream.rate, 3),
                            "channels": 1,
                            "models": [MODEL_INFO["name"]],
                            "model_info": {MODEL_INFO["name"]: MODEL_INFO},
                        }
                    )
                    await ws.close()
        stream.close()
        return ws

    app = web.Application()
    app.router.add_get("/v1/listen", listen)
    return app


async def start(state: DeepgramState) -> tuple[web.AppRunner, str]:
    """Serve on 127.0.0.1 (a free port), its recogniser loaded; the runner (cleanup() it)
    and the listen URL."""
    await asyncio.to_thread(sphinx.prewarm_process)
    runner = web.AppRunner(build_app(state))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/v1/listen"
