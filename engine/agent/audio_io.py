"""Audio in and out of an AgentSession without a LiveKit room.

:class:`CallerLine` is the session's ``input.audio``: a phone line that
sends a frame every ``frame_ms`` in real time, silence unless caller audio
was queued with :meth:`CallerLine.play`. :class:`RecordingSpeaker` is the
session's ``output.audio``: it plays what the agent says in real time, the
way a phone would, and records every piece of it with the time it was heard,
so interruptions cut the recording exactly where a caller would stop hearing.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from livekit import rtc
from livekit.agents.voice import io

from engine.agent.timeline import Timeline

PIECE_SECONDS = 0.01  # the speaker plays (and a clear cuts) with this granularity


LINE_AT = "voxflow_line_at"  # AudioFrame.userdata: the frame's start on the timeline


class CallerLine(io.AudioInput):
    """The caller's side of the line, paced in real time on ``timeline``.

    Frame ``i`` is due at ``i * frame_ms``; it is handed to the session then
    (or at once, if the session fell behind), and its place on the timeline is
    always ``i * frame_ms``, so the caller's audio has exact times.
    """

    def __init__(self, timeline: Timeline, *, sample_rate: int = 16000, frame_ms: int = 20) -> None:
        super().__init__(label="voxflow-caller")
        self._timeline = timeline
        self.sample_rate = sample_rate
        self._frame_samples = sample_rate * frame_ms // 1000
        self._frame_seconds = self._frame_samples / sample_rate
        self._pending = bytearray()
        self._index = 0
        self._closed = False
        self.sent: list[bytes] = []  # every frame sent, silence included: the caller's recording

    def play(self, pcm: bytes) -> float:
        """Queue 16-bit mono ``pcm`` at :attr:`sample_rate` after what is queued;
        returns the time on the timeline at which it starts."""
        queued_frames = -(-len(self._pending) // (self._frame_samples * 2))
        start = (self._index + queued_frames) * self._frame_seconds
        self._pending.extend(pcm)
        # Round up to whole frames so the next clip starts on a frame boundary.
        remainder = len(self._pending) % (self._frame_samples * 2)
        if remainder:
            self._pending.extend(bytes(self._frame_samples * 2 - remainder))
        return start

    @property
    def busy_until(self) -> float:
        """When the queued caller audio ends on the timeline."""
        frames = len(self._pending) // (self._frame_samples * 2)
        return (self._index + frames) * self._frame_seconds

    def close(self) -> None:
        self._closed = True

    async def __anext__(self) -> rtc.AudioFrame:
        if self._closed:
            raise StopAsyncIteration
        await self._timeline.sleep_until(self._index * self._frame_seconds)
        if self._closed:
            raise StopAsyncIteration
        size = self._frame_samples * 2
        if self._pending:
            data = bytes(self._pending[:size])
            del self._pending[:size]
        else:
            data = bytes(size)
        frame = rtc.AudioFrame(data, self.sample_rate, 1, self._frame_samples)
        # Its place on the timeline travels with it (the harness's VAD marks: audio time).
        frame.userdata[LINE_AT] = self._index * self._frame_seconds
        self._index += 1
        self.sent.append(data)
        return frame

    def recording(self) -> np.ndarray:
        """Everything sent so far, as int16 samples from time 0."""
        return np.frombuffer(b"".join(self.sent), dtype=np.int16)


@dataclass
class PlayedSegment:
    """One utterance of the agent as the caller heard it (timeline seconds)."""

    started_at: float | None = None
    ended_at: float | None = None
    interrupted: bool = False
    played: float = 0.0  # seconds of audio heard


@dataclass
class _Segment:
    record: PlayedSegment
    pieces: deque[bytes] = field(default_factory=deque)
    flushed: bool = False
    cleared: bool = False


class RecordingSpeaker(io.AudioOutput):
    """Plays the agent's audio in real time and records it on the timeline.

    ``on_heard`` is given each piece as it is played (a browser caller's
    speaker: it hears exactly what a phone would, interruptions included).
    """

    def __init__(
        self, timeline: Timeline, *, sample_rate: int = 16000, on_heard: Callable[[bytes], None] | None = None
    ) -> None:
        super().__init__(
            label="voxflow-recorder",
            next_in_chain=None,
            sample_rate=sample_rate,
            # No pause: an interruption stops the prompt at once instead of pausing it
            # to resume if the caller turns out to have said nothing.
            capabilities=io.AudioOutputCapabilities(pause=False),
        )
        self._timeline = timeline
        self._on_heard = on_heard
        self._piece_samples = int(sample_rate * PIECE_SECONDS)
        self._current: _Segment | None = None
        self._queue: deque[_Segment] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.heard: list[tuple[float, bytes]] = []  # (timeline start, pcm) of every piece played
        self.segments: list[PlayedSegment] = []

    def start(self) -> None:
        self._task = asyncio.create_task(self._play(), name="voxflow-recorder-playout")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if self._current is None or self._current.flushed:
            self._current = _Segment(PlayedSegment())
            self.segments.append(self._current.record)
            self._queue.append(self._current)
        if self._current.cleared:
            return  # the rest of an interrupted utterance: never heard
        data = bytes(frame.data)
        step = self._piece_samples * 2
        for offset in range(0, len(data), step):
            self._current.pieces.append(data[offset : offset + step])
        self._wake.set()

    def flush(self) -> None:
        super().flush()
        if self._current is not None and not self._current.flushed:
            self._current.flushed = True
            self._wake.set()

    def clear_buffer(self) -> None:
        for segment in self._queue:
            segment.pieces.clear()
            segment.cleared = True
        self._wake.set()

    async def _play(self) -> None:
        head = 0.0  # when the speaker is free again
        while True:
            segment = self._queue[0] if self._queue else None
            if segment is None or (not segment.pieces and not segment.flushed):
                self._wake.clear()
                await self._wake.wait()
                continue
            if not segment.pieces:  # flushed and nothing left: the utterance is over
                self._queue.popleft()
                self._finish(segment, head)
                continue
            piece = segment.pieces.popleft()
            start = max(self._timeline.now(), head)
            await self._timeline.sleep_until(start)
            if segment.record.started_at is None:
                segment.record.started_at = start
                self.on_playback_started(created_at=self._timeline.to_wall(start))
            self.heard.append((start, piece))
            if self._on_heard is not None:
                self._on_heard(piece)
            seconds = len(piece) / 2 / self.sample_rate_or_default
            segment.record.played += seconds
            head = start + seconds
            # Wait for the piece to be heard before the next one: this is where a
            # clear_buffer() lands, as it would on a real line.
            await self._timeline.sleep_until(head)

    def _finish(self, segment: _Segment, head: float) -> None:
        segment.record.ended_at = max(head, segment.record.started_at or head)
        segment.record.interrupted = segment.cleared
        if self._current is segment:
            self._current = None
        self.on_playback_finished(playback_position=segment.record.played, interrupted=segment.cleared)

    @property
    def sample_rate_or_default(self) -> int:
        return self.sample_rate or 16000

    def recording(self) -> np.ndarray:
        """What the caller heard, as int16 samples from time 0 (silence between)."""
        rate = self.sample_rate_or_default
        if not self.heard:
            return np.zeros(0, dtype=np.int16)
        last_start, last_piece = self.heard[-1]
        total = int(round((last_start) * rate)) + len(last_piece) // 2
        out = np.zeros(total, dtype=np.int16)
        for start, piece in self.heard:
            samples = np.frombuffer(piece, dtype=np.int16)
            at = int(round(start * rate))
            out[at : at + len(samples)] = samples[: max(0, total - at)]
        return out
