"""Where the VAD placed the caller's speech, in audio time (for the audio harness).

The session reports the caller starting and stopping to speak with wall-clock
stamps (livekit-agents: the time the event was handled, less the silence the VAD
waited on), so a busy machine, which processes audio late, moves them later. This
VAD wraps the session's and reads its events' own audio positions instead: each
frame of the :class:`~engine.agent.audio_io.CallerLine` carries its place on the
timeline, and an event's ``timestamp`` counts audio from the first frame the VAD
stream took (since its last flush). A mark is then where the VAD put the speech
on the caller's audio, however late it was computed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from livekit import rtc
from livekit.agents import vad as agents_vad

from engine.agent.audio_io import LINE_AT

# (kind, timeline seconds): "speech_start", "speech_end" (where the VAD put them) or
# "speech_end_heard" (where the audio was when it decided the speech had ended)
OnMark = Callable[[str, float], None]


class MarkingVAD(agents_vad.VAD):
    """``inner``, whose streams also report their speech marks to ``on_mark``."""

    def __init__(self, inner: agents_vad.VAD, on_mark: OnMark) -> None:
        super().__init__(capabilities=inner.capabilities)
        self._inner = inner
        self._on_mark = on_mark

    @property
    def model(self) -> str:
        return self._inner.model

    @property
    def provider(self) -> str:
        return self._inner.provider

    def stream(self) -> agents_vad.VADStream:
        return _MarkingStream(self._inner.stream(), self._on_mark)  # type: ignore[return-value]

    def __getattr__(self, name: str) -> Any:  # options (min_silence_duration, ...) are the inner's
        return getattr(self._inner, name)


class _MarkingStream:
    def __init__(self, inner: agents_vad.VADStream, on_mark: OnMark) -> None:
        self._inner = inner
        self._on_mark = on_mark
        # The timeline place of the first frame after the stream's start and after each
        # flush (the VAD counts its timestamps from there), oldest first.
        self._origins: list[float | None] = [None]
        self._segment = 0
        self._last_timestamp = -1.0

    def push_frame(self, frame: rtc.AudioFrame) -> None:
        if self._origins[-1] is None:
            self._origins[-1] = frame.userdata.get(LINE_AT)
        self._inner.push_frame(frame)

    def flush(self) -> None:
        self._origins.append(None)
        self._inner.flush()

    def end_input(self) -> None:
        self._inner.end_input()

    async def aclose(self) -> None:
        await self._inner.aclose()

    def __aiter__(self) -> AsyncIterator[agents_vad.VADEvent]:
        return self

    async def __anext__(self) -> agents_vad.VADEvent:
        event = await self._inner.__anext__()
        if event.timestamp < self._last_timestamp and self._segment + 1 < len(self._origins):
            self._segment += 1  # the VAD started counting again: the flush was reached
        self._last_timestamp = event.timestamp
        origin = self._origins[self._segment]
        if origin is not None:
            if event.type == agents_vad.VADEventType.START_OF_SPEECH:
                self._on_mark("speech_start", origin + event.timestamp - event.speech_duration)
            elif event.type == agents_vad.VADEventType.END_OF_SPEECH:
                self._on_mark("speech_end", origin + event.timestamp - event.silence_duration)
                self._on_mark("speech_end_heard", origin + event.timestamp)  # the silence waited out
        return event

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
