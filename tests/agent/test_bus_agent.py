"""The bus agent keeps the voice bus contract on real audio: keys, recording, play, stop,
transfers. Driven by the plugin side's own VoiceChannel, on the harness (no Temporal)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest

from engine.agent import clips, wav
from engine.agent.bus_agent import BusAgent, BusAgentOptions
from engine.agent.control import LocalCallControl
from engine.agent.harness import AudioHarness
from engine.agent.listening import ListeningOptions
from engine.voice.channel import Prompt, VoiceChannel
from engine.voice.errors import AgentError
from engine.voice.memory_bus import MemoryVoiceBus
from engine.voice.messages import Dtmf, TtsInterrupted, TtsStarted
from tests.agent.conftest import new_call_id
from tests.agent.speech import RATE, speech
from tests.agent.support import BusLog
from tests.waiting import wait_until

KEY_LIMIT = 0.15  # a key stops a prompt at once: one 10 ms piece plus scheduling


def _tone_seconds(samples: np.ndarray, hz: float = 1000.0) -> float:
    """How long ``samples`` hold a strong ``hz`` tone (10 ms windows)."""
    size = RATE // 100
    count = len(samples) // size
    windows = samples[: count * size].astype(np.float64).reshape(count, size)
    t = np.arange(size) / RATE
    probe = np.exp(-2j * np.pi * hz * t)
    strength = np.abs(windows @ probe) / size
    return float((strength > 2000).sum() / 100)


def test_keys_recording_play_stop_and_a_failed_transfer(tmp_path: Path) -> None:
    call_id = new_call_id("contract")
    clip = tmp_path / "hold.wav"
    wav.write(clip, speech("please hold"), RATE)

    async def scenario() -> None:
        bus = MemoryVoiceBus()
        control = LocalCallControl(failing=["+15550009999"])
        options = BusAgentOptions(
            listening=ListeningOptions(recordings_dir=tmp_path / "rec", record_end_silence=1.0)
        )
        async with AudioHarness() as call, BusLog(bus, call_id, call.timeline) as log:
            agent = BusAgent(bus, call_id, call.voice, control, options=options)
            serving = agent.start()
            async with VoiceChannel(bus, call_id) as channel:
                # -- A key cuts the prompt and is the first digit.
                async def type_keys() -> float:
                    started = await log.wait_for(TtsStarted)
                    await call.wait_until(started.at + 0.8)
                    pressed = call.timeline.now()
                    agent.dtmf("4")
                    await asyncio.sleep(0.3)  # the caller's pause between two keys
                    agent.dtmf("2")
                    agent.dtmf("#")
                    return pressed

                typing = asyncio.ensure_future(type_keys())
                digits = await channel.collect_dtmf(
                    prompt=Prompt("Please type your account number, then press pound."),
                    finish_on_key="#",
                    timeout=5,
                )
                pressed = await typing
                assert digits.kind == "digits" and digits.digits == "42" and digits.barged_in
                cut = log.of(TtsInterrupted)[-1]
                assert (cut.by, cut.digit) == ("dtmf", "4")
                first_key = log.of(Dtmf)[0]
                assert log.index(first_key) < log.index(cut)
                last_sound = wav.sound_spans(call.agent_audio(), RATE, gap=0.0)[-1][1]
                assert last_sound - pressed <= KEY_LIMIT, last_sound - pressed

                # -- A recording: the beep, then the caller, until they stop talking.
                played = len(call.speaker.segments)

                async def leave_message() -> None:  # once the beep has been heard to its end
                    await wait_until(
                        lambda: any(s.ended_at is not None for s in call.speaker.segments[played:]),
                        what="the beep",
                    )
                    call.play_caller(speech("please call me back tomorrow morning"))

                speaking = asyncio.ensure_future(leave_message())
                before_beep = call.timeline.now()
                recorded = await channel.record(max_duration=20, no_input_timeout=5)
                await speaking
                assert recorded.kind == "recorded"
                path = Path(urlparse(recorded.url).path)
                assert path.is_file() and path.parent == tmp_path / "rec"
                kept = np.frombuffer(wav.read_pcm(path, RATE), dtype=np.int16)
                assert wav.sound_seconds(kept, RATE) > 1.0
                assert 2.0 < recorded.duration < 8.0
                start = int(before_beep * RATE)
                # The beep was heard: at least half of its tone (on a loaded machine the
                # speaker's frames can arrive with gaps, and a 10 ms window across a gap is weak).
                beep = np.frombuffer(clips.beep_pcm(RATE), dtype=np.int16)
                assert _tone_seconds(call.agent_audio()[start:]) >= 0.5 * _tone_seconds(beep) > 0.1

                # -- play: the beep and a WAV file, heard to the end.
                assert not (await channel.play("beep")).interrupted
                assert not (await channel.play(str(clip))).interrupted
                with pytest.raises(AgentError, match="no such audio file"):
                    await channel.play(str(tmp_path / "missing.wav"))

                # -- stop: a cancelled node stops its prompt.
                speaking_long = asyncio.ensure_future(
                    channel.speak(
                        "This is a very long announcement about our opening hours, which you "
                        "will not hear to the end."
                    )
                )
                long_started = await log.wait_for(TtsStarted, after=call.timeline.now())
                await call.wait_until(long_started.at + 0.5)
                speaking_long.cancel()
                stopped = await log.wait_for(
                    TtsInterrupted, lambda e: e.request_id == long_started.message.request_id
                )
                assert stopped.message.by == "stop"

                # -- A transfer that fails is error:transfer, said plainly; one that works ends.
                with pytest.raises(AgentError, match="busy") as failed:
                    await channel.transfer("+15550009999")
                assert failed.value.code == "transfer"
                await channel.transfer("+15550001111")
            assert await asyncio.wait_for(serving, 5) == "transfer"
        assert control.transfers == ["tel:+15550001111"]

    asyncio.run(scenario())
