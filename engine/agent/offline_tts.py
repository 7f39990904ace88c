"""An offline text-to-speech plugin for livekit-agents, on espeak-ng.

Not natively streaming: the AgentSession wraps it in ``tts.StreamAdapter``
and hands it a sentence at a time. Within a sentence the audio is emitted as
espeak makes it (100 ms chunks), so the first frame leaves a few
milliseconds after the text arrives.

espeak-ng is a global C library; engine.agent.espeak serialises every
synthesis with a lock, and this plugin runs it in a worker thread so the
event loop (the caller's audio, VAD) never waits on it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from dataclasses import replace

from livekit import rtc
from livekit.agents import tts
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions

from engine.agent import espeak
from engine.core.errors import VoxflowError

DEFAULT_SAMPLE_RATE = 16000
log = logging.getLogger(__name__)


class OfflineTTS(tts.TTS):
    """espeak-ng as a livekit-agents TTS: 16-bit mono PCM at ``sample_rate``.

    ``voice`` is an espeak voice name (``en-us``, ``en``, ``fr``, ``en-us+f3``
    for a variant); ``rate`` is in words per minute.
    """

    def __init__(
        self,
        *,
        voice: str = "en-us",
        rate: int = 175,
        pitch: int = 50,
        sample_rate: int = DEFAULT_SAMPLE_RATE,
    ) -> None:
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=False),
            sample_rate=sample_rate,
            num_channels=1,
        )
        if not espeak.has_voice(voice):
            raise VoxflowError(
                f"the offline text-to-speech engine has no voice {voice!r}; use a language "
                "code espeak-ng knows, such as 'en-us', 'en', 'fr' or 'de'"
            )
        self._voice = espeak.Voice(name=voice, rate=rate, pitch=pitch)

    @property
    def model(self) -> str:
        return "espeak-ng"

    @property
    def provider(self) -> str:
        return "voxflow-offline"

    @property
    def voice(self) -> espeak.Voice:
        return self._voice

    def update_options(
        self, *, voice: str | None = None, rate: int | None = None, pitch: int | None = None
    ) -> None:
        """Change how the next sentences sound. An unknown voice is ignored with a
        warning: a flow written for a cloud voice ("rachel") still runs offline."""
        if voice is not None and voice != self._voice.name:
            if espeak.has_voice(voice):
                self._voice = replace(self._voice, name=voice)
            else:
                log.warning("offline text-to-speech has no voice %r; keeping %r", voice, self._voice.name)
        if rate is not None:
            self._voice = replace(self._voice, rate=rate)
        if pitch is not None:
            self._voice = replace(self._voice, pitch=pitch)

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.ChunkedStream:
        return _EspeakStream(tts=self, input_text=text, conn_options=conn_options)


class _EspeakStream(tts.ChunkedStream):
    def __init__(self, *, tts: OfflineTTS, input_text: str, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, input_text=input_text, conn_options=conn_options)
        self._offline_tts = tts
        self._voice = tts.voice  # fixed for this sentence, even if options change meanwhile

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        target_rate = self._offline_tts.sample_rate
        output_emitter.initialize(
            request_id=uuid.uuid4().hex[:12],
            sample_rate=target_rate,
            num_channels=1,
            mime_type="audio/pcm",
        )
        loop = asyncio.get_running_loop()
        chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        stop = threading.Event()  # set when this stream is cancelled (barge-in)

        def on_chunk(chunk: bytes) -> bool:
            if stop.is_set():
                return False
            loop.call_soon_threadsafe(chunks.put_nowait, chunk)
            return True

        def run() -> None:
            try:
                espeak.synthesize(self.input_text, self._voice, on_chunk)
            finally:
                loop.call_soon_threadsafe(chunks.put_nowait, None)

        source_rate = await asyncio.to_thread(espeak.sample_rate)
        resampler = (
            rtc.AudioResampler(
                source_rate, target_rate, num_channels=1, quality=rtc.AudioResamplerQuality.HIGH
            )
            if source_rate != target_rate
            else None
        )
        synthesis = asyncio.ensure_future(asyncio.to_thread(run))
        try:
            while (chunk := await chunks.get()) is not None:
                if resampler is None:
                    output_emitter.push(chunk)
                    continue
                frame = rtc.AudioFrame(chunk, source_rate, 1, len(chunk) // 2)
                for out in resampler.push(frame):
                    output_emitter.push(bytes(out.data))
            if resampler is not None:
                for out in resampler.flush():
                    output_emitter.push(bytes(out.data))
            await synthesis  # raises what the synthesis raised
        finally:
            stop.set()
        output_emitter.flush()
