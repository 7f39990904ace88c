"""The audio harness: a real AgentSession (Silero VAD, pocketsphinx, espeak-ng)
on a simulated line, in real time. Everything is asserted from the recorded
audio and the session's events, on the harness timeline."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from engine.agent import wav
from engine.agent.harness import AudioHarness, HarnessEvent
from tests.agent.speech import RATE, onset, silence, speech
from tests.waiting import wait_until

MENU = ["balance", "my balance", "agent", "representative"]
PROMPT = (
    "Welcome to Acme Bank. For your balance, say balance. "
    "To speak with someone, say agent. Calls may be recorded."
)
# The bar: speech over an interruptible prompt stops it within 300 ms.
BARGE_IN_LIMIT = 0.3


def _last(events: list[HarnessEvent], kind: str) -> HarnessEvent:
    matching = [event for event in events if event.kind == kind]
    assert matching, f"no {kind} event in {events}"
    return matching[-1]


def _playing(call: AudioHarness) -> bool:
    return bool(call.speaker.segments) and call.speaker.segments[-1].started_at is not None


def test_caller_wav_is_heard_and_transcribed(tmp_path: Path) -> None:
    clip = np.concatenate([silence(1.0), speech("balance"), silence(1.2)])
    caller_wav = tmp_path / "caller.wav"
    wav.write(caller_wav, clip, RATE)

    async def run() -> None:
        async with AudioHarness() as call:
            call.expect_phrases(MENU)
            start = call.play_caller(caller_wav)
            heard = await call.wait_for_transcript(timeout=8)
            speech_start = start + onset(clip)
            speech_end = start + wav.sound_spans(clip, RATE)[-1][1]

            assert heard.text == "balance"
            assert heard.confidence is not None and heard.confidence >= 0.5
            # Where the VAD placed the speech on the caller's audio (audio time: a busy
            # machine computes it later, but puts it in the same place). The answer may be
            # decided before the session's VAD closes its segment.
            started = (await call.wait_for_event("vad_speech_start")).at
            ended = (await call.wait_for_event("vad_speech_end", after=started)).at
            # VAD: start of speech placed within 150 ms of it; its end near the real end.
            assert speech_start <= started + 0.05 and started - speech_start < 0.15, (started, speech_start)
            assert abs(ended - speech_end) < 0.25, (ended, speech_end)
            # The session reports the same speech (on the wall clock, so no closer bound).
            reported = _last(call.events, "caller_speaking").at
            assert reported >= speech_start - 0.05, (reported, speech_start)
            # The answer is final once VAD has heard the end silence (audio time: how long
            # STT then takes on a busy machine is bench/bench_agent.py's to measure).
            decided_at = (await call.wait_for_event("vad_speech_end_heard", after=started)).at
            assert 0 < decided_at - speech_end < call.options.vad.min_silence + 0.25, (decided_at, speech_end)
            decided = _last(call.events, "stt_end_of_speech").at
            silent = (await call.wait_for_event("caller_silent", after=reported)).at
            print(
                f"\nsession (wall clock): start +{(reported - speech_start) * 1000:.0f} ms, end "
                f"{(silent - speech_end) * 1000:+.0f} ms; VAD (audio time): "
                f"start +{(started - speech_start) * 1000:.0f} ms; speech end placed "
                f"{(ended - speech_end) * 1000:+.0f} ms, decided +{(decided - speech_end) * 1000:.0f} ms; "
                f"STT {(heard.at - decided) * 1000:.0f} ms; final transcript "
                f"+{(heard.at - speech_end) * 1000:.0f} ms after speech end"
            )

    asyncio.run(run())


def test_what_the_agent_says_is_recorded(tmp_path: Path) -> None:
    text = "Your balance is forty two dollars."
    expected = len(speech(text)) / RATE

    async def run() -> None:
        async with AudioHarness() as call:
            handle = call.say(text)
            await handle
            assert not handle.interrupted
            segment = call.speaker.segments[-1]
            assert segment.started_at is not None and segment.ended_at is not None
            assert not segment.interrupted

            recording = call.agent_audio()
            out = tmp_path / "agent.wav"
            wav.write(out, recording, RATE)
            spans = wav.sound_spans(np.frombuffer(wav.read_pcm(out, RATE), dtype=np.int16), RATE)
            assert len(spans) == 1
            start, end = spans[0]
            assert abs(start - segment.started_at) < 0.1
            # Played in real time: as long as the speech itself, give or take its silences.
            assert abs((end - start) - expected) < 0.4, (end - start, expected)
            assert wav.sound_seconds(recording, RATE) > 1.0
            assert segment.ended_at - segment.started_at >= end - start - 0.05

    asyncio.run(run())


def test_caller_speech_stops_an_interruptible_prompt_within_300_ms() -> None:
    answer = speech("agent")

    async def run() -> None:
        async with AudioHarness() as call:
            call.expect_phrases(MENU)
            handle = call.say(PROMPT, allow_interruptions=True)
            await wait_until(lambda: _playing(call), what="the prompt to play")
            prompt_start = call.speaker.segments[-1].started_at
            assert prompt_start is not None
            await call.wait_until(prompt_start + 1.5)
            caller_onset = call.play_caller(answer) + onset(answer)
            await handle
            heard = await call.wait_for_transcript(timeout=8)

            assert handle.interrupted
            assert call.speaker.segments[-1].interrupted
            spans = wav.sound_spans(call.agent_audio(), RATE, gap=0.0)
            last_sound = spans[-1][1]
            stop_latency = last_sound - caller_onset
            assert 0 < stop_latency <= BARGE_IN_LIMIT, stop_latency
            # The prompt was cut: far less of it played than its full length.
            assert call.speaker.segments[-1].played < len(speech(PROMPT)) / RATE - 2.0
            # The session saw it the same way: caller speaking, then the agent stopped.
            speaking = _last(call.events, "caller_speaking").at
            assert caller_onset - 0.05 <= speaking <= last_sound
            stopped = [
                e
                for e in call.events_of("agent_state")
                if e.detail["state"] == "listening" and e.at >= speaking
            ]
            assert stopped and stopped[0].at - caller_onset <= BARGE_IN_LIMIT
            # What the caller said over the prompt is their answer.
            assert heard.text == "agent"
            print(
                f"\nbarge-in: caller onset {caller_onset:.3f}s, VAD start +"
                f"{(speaking - caller_onset) * 1000:.0f} ms, last agent sound +"
                f"{stop_latency * 1000:.0f} ms"
            )

    asyncio.run(run())


def test_an_uninterruptible_prompt_plays_to_the_end() -> None:
    text = "Please listen carefully, as our options have changed."
    full = len(speech(text)) / RATE

    async def run() -> None:
        async with AudioHarness() as call:
            handle = call.say(text, allow_interruptions=False)
            await wait_until(lambda: _playing(call), what="the prompt to play")
            await call.wait_until((call.speaker.segments[-1].started_at or 0) + 0.8)
            call.play_caller(speech("agent"))
            await handle
            assert not handle.interrupted
            segment = call.speaker.segments[-1]
            assert not segment.interrupted
            assert abs(segment.played - full) < 0.1

    asyncio.run(run())
