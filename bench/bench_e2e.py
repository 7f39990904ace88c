"""A phone call's latencies on the real LiveKit server, voxflow against a bare answerer.

Run: ``python -m bench.bench_e2e [--calls 10]`` (builds the LiveKit server once
if needed: engine.testbed.livekit_server; starts the embedded Temporal and Redis).

Each call goes the end-to-end tests' way (tests/livekit): signed call.initiated
→ TeXML → the caller joins the dialled room as LiveKit SIP would (G.711 audio)
→ LiveKit dispatches ``voxflow agent`` (a child process, offline engines:
espeak-ng, pocketsphinx, Silero) → the workflow. Two figures per call, on the
caller's clock:

greeting
    the caller dialling (joining the room: LiveKit SIP does so on the INVITE) →
    the first audio of the greeting at the caller
reply
    the end of the caller's "balance" → the first audio of the answer (the
    flow's 800 ms of end-of-turn silence included)

The baseline, measured in the same run on the same LiveKit: a bare answerer,
a plain LiveKit participant already in the room that sends a tone as soon as
it hears the caller's first frame, and again 800 ms after the caller's speech
ends (the same end-of-turn silence): LiveKit's own floor for both figures.
Medians over the calls (the first of each kind warms up and is not counted);
the ratios are voxflow / bare.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python bench/bench_e2e.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from livekit import api, rtc

from engine.runtime.temporal_server import EmbeddedTemporal
from engine.testbed import livekit_server
from engine.testbed.sip_caller import FRAME_MS, FRAME_SAMPLES, RATE, SOUND_LEVEL, RoomCaller
from engine.voice.redis_server import EmbeddedRedis
from tests.agent.speech import speech
from tests.livekit.call_bed import call_bed

END_OF_TURN = 0.8  # the flow's end_silence_ms: what both answerers wait after speech


async def _voxflow_call(bed: object) -> tuple[float, float]:
    call_id, caller = await bed.incoming_call()  # type: ignore[attr-defined]
    dialled = await caller.dial()
    try:
        greeting = await caller.wait_for_sound(dialled, 60)
        await caller.wait_for_quiet(greeting, quiet=1.2, timeout=60)
        said = await caller.say(speech("balance"))
        reply = await caller.wait_for_sound(said, 60)
    finally:
        await caller.hang_up()
    return greeting - dialled, reply - said


class BareAnswerer:
    """A LiveKit participant that answers with a tone: LiveKit's floor for the figures."""

    def __init__(self, endpoints: livekit_server.LiveKitEndpoints, room: str) -> None:
        self.endpoints = endpoints
        self.room_name = room
        self.room = rtc.Room()
        self.source = rtc.AudioSource(RATE, 1, queue_size_ms=200)
        self._tasks: list[asyncio.Task[None]] = []

    async def join(self) -> None:
        token = (
            api.AccessToken(self.endpoints.api_key, self.endpoints.api_secret)
            .with_identity("bare-answerer")
            .with_kind("agent")
            .with_grants(api.VideoGrants(room_join=True, room=self.room_name))
            .to_jwt()
        )
        self.room.on(
            "track_subscribed", lambda track, *_: self._tasks.append(asyncio.create_task(self._listen(track)))
        )
        await self.room.connect(self.endpoints.url, token)
        track = rtc.LocalAudioTrack.create_audio_track("answer", self.source)
        await self.room.local_participant.publish_track(
            track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        )
        self._tasks.append(asyncio.create_task(self._silence()))
        self._tone = asyncio.Event()

    async def _silence(self) -> None:
        tone = (np.sin(np.arange(FRAME_SAMPLES) * 2 * np.pi * 440 / RATE) * 8000).astype(np.int16)
        quiet = np.zeros(FRAME_SAMPLES, np.int16)
        left = 0
        next_at = time.monotonic()
        while True:
            if self._tone.is_set():
                self._tone.clear()
                left = 25  # half a second of tone
            frame = tone if left > 0 else quiet
            left -= 1
            await self.source.capture_frame(rtc.AudioFrame(frame.tobytes(), RATE, 1, FRAME_SAMPLES))
            next_at += FRAME_MS / 1000
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def _listen(self, track: rtc.Track) -> None:
        stream = rtc.AudioStream(track, sample_rate=RATE, num_channels=1, frame_size_ms=FRAME_MS)
        first, spoke, last_loud = True, False, 0.0
        async for event in stream:
            samples = np.frombuffer(bytes(event.frame.data), dtype=np.int16)
            now = time.monotonic()
            if first:
                first = False
                self._tone.set()  # the greeting
            if samples.size and int(np.abs(samples).max()) >= SOUND_LEVEL:
                spoke, last_loud = True, now
            elif spoke and now - last_loud >= END_OF_TURN:
                spoke = False
                self._tone.set()  # the reply

    async def leave(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.room.disconnect()


async def _bare_call(endpoints: livekit_server.LiveKitEndpoints, number: int) -> tuple[float, float]:
    room = f"bare-{number}"
    answerer = BareAnswerer(endpoints, room)
    await answerer.join()
    caller = RoomCaller(endpoints.url, endpoints.api_key, endpoints.api_secret, room, agent_name="nobody")
    try:
        dialled = await caller.dial()
        greeting = await caller.wait_for_sound(dialled, 30)
        await caller.wait_for_quiet(greeting, quiet=1.2, timeout=30)
        said = await caller.say(speech("balance"))
        reply = await caller.wait_for_sound(said, 30)
    finally:
        await caller.hang_up()
        await answerer.leave()
    return greeting - dialled, reply - said


async def _run(
    calls: int, temporal: EmbeddedTemporal, redis: EmbeddedRedis, folder: Path
) -> dict[str, list[tuple[float, float]]]:
    results: dict[str, list[tuple[float, float]]] = {"voxflow": [], "bare": []}
    async with call_bed(temporal.settings(), redis.url, folder) as bed:
        for number in range(calls + 1):
            results["bare"].append(await _bare_call(bed.livekit, number))
            results["voxflow"].append(await _voxflow_call(bed))
            print(
                f"call {number}: voxflow greeting {results['voxflow'][-1][0] * 1000:.0f} ms, "
                f"reply {results['voxflow'][-1][1] * 1000:.0f} ms; bare "
                f"{results['bare'][-1][0] * 1000:.0f} / {results['bare'][-1][1] * 1000:.0f} ms",
                flush=True,
            )
            await asyncio.sleep(1.0)  # the previous call's room and job wind down
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10, help="calls counted (default 10)")
    args = parser.parse_args(argv)
    # Stopped from outside (timeout, kill): unwind, so LiveKit and the agent stop too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    livekit_server.build()
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as folder, EmbeddedTemporal() as temporal:
        redis = EmbeddedRedis()
        redis.start()
        try:
            results = asyncio.run(_run(args.calls, temporal, redis, Path(folder)))
        finally:
            redis.stop()
    counted = {kind: values[1:] for kind, values in results.items()}
    print(
        f"\nmedians of {args.calls} calls (LiveKit {livekit_server.LIVEKIT_SERVER.version}, offline engines):"
    )
    for index, name in enumerate(
        ("INVITE → first greeting audio", "end of caller speech → first reply audio")
    ):
        ours = statistics.median(v[index] for v in counted["voxflow"]) * 1000
        bare = statistics.median(v[index] for v in counted["bare"]) * 1000
        print(
            f"  {name}: voxflow {ours:.0f} ms, bare LiveKit answerer {bare:.0f} ms, ratio {ours / bare:.2f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
