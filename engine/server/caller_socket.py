"""The browser caller: one WebSocket carries a call's caller side, for ``voxflow dev``.

The monitor page (and ``voxflow chat --server``) opens ``/api/caller`` with the
API token, like the other API routes. The call it places takes the path of a
phone call: the server rings it through the call desk (record, ``call:incoming``,
the workflow started on the flow's current version), the workflow talks to an
agent over the voice bus, and the agent (engine.agent.dev_agents) hears this
socket's audio instead of a LiveKit room.

Messages from the client (JSON text, except audio):

``{"type": "start", "flow": ID}`` or ``{"type": "start", "number": "+1555..."}``
    place a call to a flow, or to a number as if dialled (its trigger decides);
    optional ``"rate"``: the sample rate of the audio to come (default 16000),
    ``"mode": "text"`` for a typed caller, ``"caller"``: the number to call from,
    ``"tab"``: an id of the browser tab (one live call per tab).
binary frames
    the caller's microphone: 16-bit little-endian mono PCM at ``rate`` (the server
    resamples to 16 kHz). Frames that are not that, or larger than
    ``MAX_AUDIO_BYTES``, are dropped with a log line; the call goes on.
``{"type": "dtmf", "digit": "5"}``, ``{"type": "say", "text": "..."}`` (typed words),
``{"type": "hangup"}``.

Messages to the client: ``started`` (call id, flow), binary frames of the agent's
audio (16-bit mono PCM at 16 kHz, as a phone would play it), ``transcript``
(speaker, text, final), ``node`` (node id), ``ended`` (status, reason), ``error``
(message). A socket that closes mid-call hangs the call up as a caller would
(``user_hangup``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from typing import Any

from aiohttp import WSMsgType, web

from engine.core import telemetry
from engine.server import events as ev
from engine.server.context import ServerContext, context_of
from engine.server.desk import CallNotTaken
from engine.server.routing import normalise_number
from engine.server.telnyx import call_id_for

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000  # what the agent hears and says (engine.agent.dev_agents)
MAX_AUDIO_BYTES = 64 * 1024  # ~0.7 s at 48 kHz: far more than a browser sends at once
MAX_MESSAGE_BYTES = 1024 * 1024  # beyond this aiohttp closes the socket
MAX_TYPED_CHARS = 500
RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
DIGITS = frozenset("0123456789*#ABCD")
LIVE_TABS: web.AppKey[set[str]] = web.AppKey("voxflow_caller_tabs", set)
DEFAULT_CALLER = "+15550100000"  # a fictional number (555-01xx), shown as the caller


class Refused(Exception):
    """The client asked for something this socket will not do; said back as an error."""


class CallerSocket:
    """One browser tab's socket: at most one live call at a time."""

    def __init__(self, ctx: ServerContext, ws: web.WebSocketResponse, tabs: set[str]) -> None:
        self.ctx = ctx
        self.ws = ws
        self.tabs = tabs
        self.tab: str | None = None
        self.call: Any = None  # the DevCall (engine.agent.dev_agents) of the live call
        self.call_id: str | None = None
        self.telnyx_id: str | None = None
        self.resampler: Any = None  # livekit.rtc.AudioResampler, to 16 kHz
        self.dropped = 0
        self._outgoing: asyncio.Queue[bytes | str | None] = asyncio.Queue()
        self._watch: asyncio.Task[None] | None = None

    # ---- the socket's life -------------------------------------------------------

    async def serve(self) -> None:
        sender = asyncio.ensure_future(self._send_all())
        try:
            async for message in self.ws:
                if message.type == WSMsgType.TEXT:
                    await self._on_text(message.data)
                elif message.type == WSMsgType.BINARY:
                    self._on_audio(message.data)
                elif message.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                    break
        finally:
            await self._hang_up("the browser was closed")
            self._outgoing.put_nowait(None)
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(sender, 2)
            if self._watch is not None:
                self._watch.cancel()

    async def _send_all(self) -> None:
        while (item := await self._outgoing.get()) is not None:
            try:
                if isinstance(item, bytes):
                    await self.ws.send_bytes(item)
                else:
                    await self.ws.send_str(item)
            except (ConnectionError, RuntimeError):
                return  # the socket is closing; what was left would not be heard anyway

    def _send(self, **message: Any) -> None:
        self._outgoing.put_nowait(json.dumps(message, default=str))

    # ---- from the client ---------------------------------------------------------

    async def _on_text(self, text: str) -> None:
        try:
            message = json.loads(text)
            if not isinstance(message, dict) or not isinstance(message.get("type"), str):
                raise Refused("each message must be a JSON object with a 'type'")
            await self._obey(message)
        except Refused as refused:
            self._send(type="error", message=str(refused))
        except ValueError:
            log.info("browser caller: a text message that is not JSON was dropped")
            self._send(type="error", message="a message that is not JSON was dropped")
        except Exception:  # noqa: BLE001 - the socket (and a live call) outlives one failure
            log.exception("browser caller %s: handling a message failed", self.call_id)
            self._send(
                type="error",
                message="voxflow hit an unexpected problem with that "
                "message; it is in the log (.voxflow/dev.log)",
            )

    async def _obey(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "start":
            await self._start(message)
            return
        if kind == "hangup":
            await self._hang_up("")
            return
        if kind == "mute":
            return  # the page stops sending audio; silence is what the agent hears then
        call = self._live_call()
        if kind == "dtmf":
            digit = str(message.get("digit", ""))
            if digit not in DIGITS:
                raise Refused(f"'{digit[:8]}' is not a key of a phone keypad (0-9, *, #)")
            call.dtmf(digit)
        elif kind == "say":
            words = str(message.get("text", "")).strip()[:MAX_TYPED_CHARS]
            if words:
                call.typed(words)
        else:
            raise Refused(f"unknown message type '{str(kind)[:40]}'")

    def _on_audio(self, data: bytes) -> None:
        if self.call is None or self.resampler is None:
            return  # audio before the call started or after it ended: nobody to hear it
        if len(data) > MAX_AUDIO_BYTES or len(data) % 2:
            self.dropped += 1
            log.warning(
                "browser caller %s: dropped an audio frame of %d bytes (frames are "
                "16-bit PCM of at most %d bytes)",
                self.call_id,
                len(data),
                MAX_AUDIO_BYTES,
            )
            return
        for frame in self.resampler.push(bytearray(data)):
            self.call.send_audio(bytes(frame.data))

    def _live_call(self) -> Any:
        if self.call is None:
            raise Refused("there is no call: send a 'start' message first")
        return self.call

    # ---- placing and ending the call ---------------------------------------------

    async def _start(self, message: dict[str, Any]) -> None:
        if self.call is not None:
            raise Refused("a call is already live here: hang it up before calling again")
        tab = str(message.get("tab") or uuid.uuid4().hex)[:64]
        if tab in self.tabs:
            raise Refused("this tab already has a live call: hang it up before calling again")
        rate = message.get("rate", SAMPLE_RATE)
        if rate not in RATES:
            raise Refused(f"audio at {rate} Hz is not supported; send one of {RATES}")
        # Imported here: only voxflow dev, which runs agents, takes browser callers.
        from livekit import rtc

        from engine.agent.dev_agents import CallerLeg

        graph, called = self._destination(message)
        caller = normalise_number(str(message.get("caller") or DEFAULT_CALLER))[:32]
        agents = self.ctx.agents
        self.tab = tab
        self.tabs.add(tab)
        self.telnyx_id = f"browser:{uuid.uuid4().hex}"
        self.call_id = call_id = call_id_for(self.telnyx_id)
        if self._watch is not None:
            self._watch.cancel()  # the previous call's, which has ended
        self._watch = asyncio.ensure_future(self._watch_call(call_id))
        leg = CallerLeg(hear=self._hear, ended=self._agent_ended)
        try:
            self.call = await agents.serve(call_id, leg)
        except Exception as error:
            self._release()
            log.exception("browser call %s: the voice agent did not start", call_id)
            raise Refused(f"the voice agent could not start: {error}") from None
        self.resampler = rtc.AudioResampler(int(rate), SAMPLE_RATE)
        try:
            # The socket lives across calls, so each call gets its own span (the call's
            # trace starts here, as a webhook's does) with the call id in its baggage.
            with telemetry.span("browser call", {"voxflow.carrier": "browser"}, call_id=call_id):
                answer = await self.ctx.desk.incoming(
                    self.telnyx_id, caller, called, carrier="browser", flow=graph
                )
        except CallNotTaken as problem:
            await self._abandon()
            raise Refused(f"the call could not start: {problem}") from None
        if answer.kind != "dial":
            # Turned away as a phone call would be (outside hours, an unknown number).
            if answer.message:
                with contextlib.suppress(Exception):
                    await self.call.harness.say(answer.message)
            self._send(
                type="ended",
                call_id=call_id,
                status="completed" if answer.message else "failed",
                reason=answer.reason,
            )
            await self._abandon()
            return
        self._send(
            type="started",
            call_id=call_id,
            flow=graph.flow_id if graph else None,
            mode=message.get("mode") or "voice",
        )

    def _destination(self, message: dict[str, Any]) -> tuple[Any, str]:
        """The flow chosen (and the number it is called on), or a number to route."""
        library = self.ctx.library
        number = str(message.get("number") or "").strip()
        if number:
            return None, normalise_number(number)
        flow_id = str(message.get("flow") or "")
        graph = library.flow(flow_id)
        if graph is None:
            raise Refused(
                f"no flow '{flow_id[:80]}' is being served; choose one of: "
                f"{', '.join(sorted(library.flows)) or 'none'}"
            )
        numbers = sorted(n for n, t in library.triggers.items() if t.flow == flow_id)
        return graph, numbers[0] if numbers else f"flow:{flow_id}"

    async def _hang_up(self, cause: str) -> None:
        """The caller ends the call: the workflow ends it as user_hangup (``cause``: how)."""
        call, telnyx_id = self.call, self.telnyx_id
        if call is None or telnyx_id is None:
            return
        call.caller_left(f"the caller hung up ({cause})" if cause else "the caller hung up")
        try:
            await self.ctx.desk.hung_up(telnyx_id, cause)
        except Exception as error:  # noqa: BLE001 - the record is closed by the workflow anyway
            log.warning("browser call %s: the hangup was not delivered: %s", self.call_id, error)
        self._release()

    async def _abandon(self) -> None:
        if self.call is not None:
            await self.call.agent.abandon()
        self._release()

    def _release(self) -> None:
        self.call = None
        self.resampler = None
        if self.tab is not None:
            self.tabs.discard(self.tab)
            self.tab = None

    # ---- to the client -------------------------------------------------------------

    def _hear(self, pcm: bytes) -> None:
        self._outgoing.put_nowait(pcm)

    def _agent_ended(self, why: str) -> None:
        if why in ("hangup", "transfer"):
            self._release()

    async def _watch_call(self, call_id: str) -> None:
        """The call's live events, for a client that has no event stream of its own."""
        async with self.ctx.hub.subscribe(call_id=call_id) as subscription:
            while True:
                _, event = await subscription.queue.get()
                data = event.data
                if event.type == ev.CALL_TRANSCRIPT:
                    self._send(
                        type="transcript",
                        speaker=data.get("speaker"),
                        text=data.get("text"),
                        kind=data.get("kind"),
                        final=bool(data.get("is_final")),
                    )
                elif event.type == ev.CALL_NODE_CHANGE:
                    self._send(type="node", node=data.get("node_id"))
                elif event.type == ev.CALL_ENDED:
                    self._send(
                        type="ended",
                        call_id=call_id,
                        status=data.get("status"),
                        reason=data.get("reason"),
                        at=time.time(),
                    )
                    if self.call_id == call_id:
                        self._release()
                    return


async def caller_socket(request: web.Request) -> web.StreamResponse:
    ctx = context_of(request)
    if ctx.agents is None:
        return web.json_response(
            {
                "error": "this server runs no voice agent, so it cannot take "
                "a browser caller: call your flows from 'voxflow dev'."
            },
            status=409,
        )
    # Pages of other sites are refused before this (engine.server.app: the WebSocket origin
    # check), since a browser would send them the token cookie.
    ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=MAX_MESSAGE_BYTES)
    await ws.prepare(request)
    await CallerSocket(ctx, ws, request.app[LIVE_TABS]).serve()
    return ws


async def caller_status(request: web.Request) -> web.Response:
    """Whether this server takes browser callers, and with which speech engines."""
    agents = context_of(request).agents
    return web.json_response(
        {"available": agents is not None, "engines": agents.describe() if agents is not None else None}
    )


async def recording(request: web.Request) -> web.StreamResponse:
    """The recording of a call an agent of this server took (voxflow dev): a WAV file."""
    agents = context_of(request).agents
    call_id = request.match_info["call_id"]
    folder = getattr(agents, "recordings_dir", None)
    if folder is None or not call_id.isalnum():
        raise web.HTTPNotFound(text="no such recording")
    path = folder / f"{call_id}.wav"
    if not path.is_file():
        raise web.HTTPNotFound(text="no such recording")
    return web.FileResponse(path, headers={"Content-Type": "audio/wav"})


def add_routes(app: web.Application) -> None:
    app[LIVE_TABS] = set()
    app.router.add_get("/api/caller", caller_socket)
    app.router.add_get("/api/caller/status", caller_status)
    app.router.add_get("/api/recordings/{call_id}.wav", recording)
