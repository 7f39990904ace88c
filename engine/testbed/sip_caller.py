"""A phone caller in a LiveKit call room, as LiveKit SIP puts one there (the test bed's caller).

LiveKit SIP turns a SIP call into a participant of kind SIP in the room its
dispatch rule names: identity ``sip_<caller number>``, ``sip.*`` attributes,
a token whose room configuration dispatches the agent, the caller's G.711
audio published as a microphone track, RFC 2833 DTMF sent as SIP DTMF data
packets, the agent's audio sent back as G.711. LiveKit SIP itself cannot be
built here (engine.testbed.livekit_server), so :class:`RoomCaller` does what it does
on the room's side, on the real LiveKit server, with the real client SDK:

- it joins with such a token (kind ``sip``, the agent dispatch in its room
  configuration, as the dispatch rule's ``room_config`` gives it);
- its microphone is a continuous 20 ms stream, silence between what it says,
  and everything it sends has been through G.711 µ-law at 8 kHz, as a phone
  line carries it;
- it records what it hears (the agent's audio, through G.711 too) with the
  time each 20 ms frame arrived;
- :meth:`press` sends DTMF as LiveKit SIP forwards RFC 2833 events;
- :meth:`hang_up` leaves the room, as LiveKit SIP does on a BYE.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from livekit import api, rtc

RATE = 16000  # what the caller's audio is recorded and published at
FRAME_MS = 20
FRAME_SAMPLES = RATE * FRAME_MS // 1000
SOUND_LEVEL = 300  # peak amplitude of a frame that counts as sound (about -40 dBFS)
DTMF_CODES = {**{str(d): d for d in range(10)}, "*": 10, "#": 11, "A": 12, "B": 13, "C": 14, "D": 15}

_BIAS = 0x84
_SEGMENT_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])


def ulaw_encode(samples: np.ndarray) -> np.ndarray:
    """16-bit PCM → G.711 µ-law bytes (ITU-T G.711, as RTP payload type 0 carries)."""
    pcm = samples.astype(np.int32) >> 2  # G.711 codes 14 bits
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(pcm), 8159) + 0x21
    segment = np.searchsorted(_SEGMENT_ENDS, magnitude)  # first end >= magnitude
    code = np.where(segment >= 8, 0x7F, (segment << 4) | ((magnitude >> (segment + 1)) & 0x0F))
    return (code ^ mask).astype(np.uint8)


def ulaw_decode(codes: np.ndarray) -> np.ndarray:
    value = ~codes.astype(np.int32) & 0xFF
    sign = value & 0x80
    exponent = (value >> 4) & 0x07
    mantissa = value & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


def through_phone_line(samples: np.ndarray) -> np.ndarray:
    """16 kHz audio as it comes out of a G.711 call: 8 kHz µ-law, back at 16 kHz."""
    narrow = samples.astype(np.int16)[::2]  # 16 → 8 kHz (the band above 4 kHz is gone)
    decoded = ulaw_decode(ulaw_encode(narrow))
    return np.repeat(decoded, 2).astype(np.int16)


@dataclass(frozen=True)
class HeardFrame:
    at: float  # time.monotonic() when it arrived
    samples: np.ndarray

    @property
    def loud(self) -> bool:
        return bool(self.samples.size) and int(np.abs(self.samples).max()) >= SOUND_LEVEL


@dataclass
class RoomCaller:
    url: str
    api_key: str
    api_secret: str
    room_name: str
    number: str = "+15557654321"
    called: str = "+15550001000"
    agent_name: str = "voxflow"
    heard: list[HeardFrame] = field(default_factory=list)
    said_until: float = 0.0  # time.monotonic() when the last thing said ended
    _room: rtc.Room | None = None
    _source: rtc.AudioSource | None = None
    _pending: list[np.ndarray] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _speaking_done: asyncio.Event | None = None

    @property
    def identity(self) -> str:
        return f"sip_{self.number}"

    def token(self) -> str:
        return (
            api.AccessToken(self.api_key, self.api_secret)
            .with_identity(self.identity)
            .with_name(f"Phone {self.number}")
            .with_kind("sip")
            .with_attributes(
                {
                    "sip.phoneNumber": self.number,
                    "sip.trunkPhoneNumber": self.called,
                    "sip.callStatus": "active",
                }
            )
            .with_grants(
                api.VideoGrants(
                    room_join=True,
                    room=self.room_name,
                    can_publish=True,
                    can_subscribe=True,
                    can_publish_data=True,
                )
            )
            .with_room_config(
                api.RoomConfiguration(agents=[api.RoomAgentDispatch(agent_name=self.agent_name)])
            )
            .to_jwt()
        )

    async def dial(self) -> float:
        """Join the room (the INVITE reaching LiveKit); returns when that started."""
        started = time.monotonic()
        room = rtc.Room()
        room.on("track_subscribed", self._on_track)
        await room.connect(self.url, self.token(), rtc.RoomOptions(auto_subscribe=True))
        self._room = room
        self._source = rtc.AudioSource(RATE, 1, queue_size_ms=200)
        track = rtc.LocalAudioTrack.create_audio_track("phone", self._source)
        await room.local_participant.publish_track(
            track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        )
        self._tasks.append(asyncio.create_task(self._microphone()))
        return started

    def _on_track(
        self, track: rtc.Track, _pub: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
    ) -> None:
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            self._tasks.append(asyncio.create_task(self._listen(track)))

    async def _listen(self, track: rtc.Track) -> None:
        stream = rtc.AudioStream(track, sample_rate=RATE, num_channels=1, frame_size_ms=FRAME_MS)
        try:
            async for event in stream:
                samples = np.frombuffer(bytes(event.frame.data), dtype=np.int16)
                self.heard.append(HeardFrame(time.monotonic(), through_phone_line(samples)))
        finally:
            await stream.aclose()

    async def _microphone(self) -> None:
        assert self._source is not None
        silence = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        next_at = time.monotonic()
        while True:
            if self._pending:
                frame = self._pending.pop(0)
                if not self._pending:
                    self.said_until = time.monotonic() + FRAME_MS / 1000
                    if self._speaking_done is not None:
                        self._speaking_done.set()
            else:
                frame = silence
            await self._source.capture_frame(rtc.AudioFrame(frame.tobytes(), RATE, 1, FRAME_SAMPLES))
            next_at += FRAME_MS / 1000
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def say(self, samples: np.ndarray) -> float:
        """Speak 16 kHz ``samples`` into the call; returns when the speech ended."""
        line = through_phone_line(samples)
        padded = np.concatenate([line, np.zeros((-line.size) % FRAME_SAMPLES, np.int16)])
        self._speaking_done = asyncio.Event()
        self._pending.extend(padded.reshape(-1, FRAME_SAMPLES))
        await self._speaking_done.wait()
        return self.said_until

    async def press(self, digits: str) -> None:
        assert self._room is not None
        for digit in digits:
            await self._room.local_participant.publish_dtmf(code=DTMF_CODES[digit], digit=digit)
            await asyncio.sleep(0.25)

    async def hang_up(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        room, self._room = self._room, None
        if room is not None:
            await room.disconnect()

    # What was heard -------------------------------------------------------------

    def first_sound_after(self, since: float) -> float | None:
        for frame in self.heard:
            if frame.at >= since and frame.loud:
                return frame.at
        return None

    async def wait_for_sound(self, since: float, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            at = self.first_sound_after(since)
            if at is not None:
                return at
            await asyncio.sleep(0.02)
        raise TimeoutError(f"heard nothing within {timeout:.0f} s")

    async def wait_for_quiet(self, since: float, quiet: float = 0.8, timeout: float = 30.0) -> float:
        """Wait for sound after ``since`` then ``quiet`` seconds without; returns its end."""
        deadline = time.monotonic() + timeout
        await self.wait_for_sound(since, timeout)
        while time.monotonic() < deadline:
            loud = [f.at for f in self.heard if f.at >= since and f.loud]
            if loud and time.monotonic() - loud[-1] >= quiet:
                return loud[-1]
            await asyncio.sleep(0.05)
        raise TimeoutError(f"the agent did not stop speaking within {timeout:.0f} s")

    def recording(self, since: float = 0.0, until: float | None = None) -> np.ndarray:
        frames = [f.samples for f in self.heard if f.at >= since and (until is None or f.at <= until)]
        return np.concatenate(frames) if frames else np.zeros(0, np.int16)


def recognise(samples: np.ndarray, phrases: Sequence[str]) -> str | None:
    """Which of ``phrases`` the recording says (pocketsphinx with their grammar), or None."""
    from engine.agent import sphinx

    engine = sphinx.engine()
    grammar = engine.grammar(tuple(phrases))
    if grammar is None:
        return None
    recognition = engine.recognize(samples.astype(np.int16).tobytes(), grammar)
    return recognition.phrase
