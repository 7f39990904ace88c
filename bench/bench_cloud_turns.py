"""End of the caller's speech → the agent's first audio, on the cloud engines.

Run: ``python -m bench.bench_cloud_turns [--rounds 8]`` (starts the embedded
Temporal dev server, or uses ``TEMPORAL_ADDRESS``). The same calls as
bench.bench_agent (a Temporal worker runs a flow that asks a menu question,
a yes/no question and a free-speech question; the caller, espeak, answers each
0.3 s after it is asked), but heard by livekit-plugins-deepgram and spoken by
livekit-plugins-elevenlabs, each talking to a local server that speaks the
service's real wire format (tests/agent/deepgram_server.py,
tests/agent/elevenlabs_server.py), since the services cannot be reached here.

The local Deepgram server's endpointing is honest: it counts the silence on the
audio as it arrives in real time and answers ``speech_final`` that many ms
after the speech ends (plus its recognition, pocketsphinx in a process of its
own). The local ElevenLabs server buffers text as ElevenLabs documents
(auto_mode, chunk_length_schedule, flush) and streams espeak's audio as it is
made. Neither imitates the services' network time or model speed: the
figures are what voxflow's options change, not what the services cost.

Both configurations in one run, prompt cache off in both (every prompt is
synthesised, so the TTS part is the live path):

before
    Deepgram's endpointing is the node's whole end_silence_ms (800 ms) and its
    speech_final ends the turn; ElevenLabs without voxflow's latency options:
    auto mode off (ElevenLabs' default chunk schedule), pcm_22050 (a rate that
    the 16 kHz line must be resampled from; the plugin's own default is mp3 at
    22.05 kHz).
after
    engine.agent.cloud_turns: a node with expected phrases asks Deepgram for
    200 ms endpointing and a whole expected phrase ends the turn at its
    speech_final; free speech keeps the whole silence. ElevenLabs with the
    phone-call defaults (engine.agent.cloud_options): auto mode, pcm_16000.

Each reply is two sentences, so a first audio that waits for the whole text
would show. The first round warms up and is not counted; medians.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python bench/bench_cloud_turns.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from livekit.agents.utils import http_context

from bench import bench_agent
from engine.agent import engines
from engine.runtime.temporal_server import EmbeddedTemporal, TemporalSettings, temporal_settings_from_env
from tests.agent import deepgram_server, elevenlabs_server

DEEPGRAM_KEY = "bench-deepgram-key"
ELEVEN_KEY = "bench-eleven-key"
VOICE = "bench-voice"
REPLIES = {
    "menu answer": "Balance it is. Your balance is forty two dollars and fifty cents.",
    "yes/no": "Noted. Thank you for confirming that the address on file is correct.",
    "free speech": "Thank you. I am sorry to hear that, and I will cancel the card right away.",
}
FLOW = textwrap.dedent(f"""\
    flow: bench-cloud
    start: ask
    nodes:
      ask:
        type: voice_menu
        prompt: "Say balance."
        options:
          - {{phrases: [balance, agent], next: answer}}
        max_visits: 1000
      answer:
        type: voice_speak
        message: "{REPLIES["menu answer"]}"
        next: confirm
        max_visits: 1000
      confirm:
        type: voice_listen
        prompt: "Is that right?"
        expected_phrases: ["yes", "no"]
        next: noted
        max_visits: 1000
      noted:
        type: voice_speak
        message: "{REPLIES["yes/no"]}"
        next: story
        max_visits: 1000
      story:
        type: voice_listen
        prompt: "Tell me what happened."
        low_confidence_threshold: 0
        next: thanks
        max_visits: 1000
      thanks:
        type: voice_speak
        message: "{REPLIES["free speech"]}"
        next: ask
        max_visits: 1000
    """)
KINDS = {
    kind: (question, said, REPLIES[kind]) for kind, (question, said, _reply) in bench_agent.KINDS.items()
}
TTS_BEFORE = {"VOXFLOW_ELEVENLABS_AUTO_MODE": "off", "VOXFLOW_ELEVENLABS_FORMAT": "pcm_22050"}
TTS_AFTER: dict[str, str] = {}  # the defaults


async def measure_cloud(settings: TemporalSettings, rounds: int, *, new: bool) -> bench_agent.Run:
    deepgram = deepgram_server.DeepgramState(api_key=DEEPGRAM_KEY)
    connects: list[float] = []
    eleven = elevenlabs_server.ElevenLabsState(api_key=ELEVEN_KEY)
    dg_runner, dg_url = await deepgram_server.start(deepgram)
    el_runner, el_url = await elevenlabs_server.start(eleven)
    env = {
        "DEEPGRAM_API_KEY": DEEPGRAM_KEY,
        "ELEVEN_API_KEY": ELEVEN_KEY,
        **(TTS_AFTER if new else TTS_BEFORE),
    }
    try:
        async with http_context.open():
            recogniser = engines.make_stt("deepgram", env=env, base_url=dg_url)

            def connected(metrics: Any) -> None:
                if getattr(metrics, "acquire_time", 0.0) and not getattr(metrics, "connection_reused", True):
                    connects.append(metrics.acquire_time)

            recogniser.on("metrics_collected", connected)
            synthesiser = engines.make_tts("elevenlabs", env=env, voice=VOICE, base_url=el_url)
            with tempfile.TemporaryDirectory(prefix="bench-cloud-") as folder:
                run = await bench_agent.measure(
                    settings,
                    rounds,
                    new=new,
                    cache_dir=Path(folder),
                    flow=FLOW,
                    kinds=KINDS,
                    stt_engine=recogniser,
                    tts_engine=synthesiser,
                    use_cache=False,
                )
            await synthesiser.aclose()
    finally:
        await dg_runner.cleanup()
        await el_runner.cleanup()
    endpointing = sorted({c.query.get("endpointing", ["?"])[0] for c in deepgram.connections})
    print(
        f"  ({run.name}: Deepgram endpointing asked for: {', '.join(endpointing)} ms; "
        f"{len(deepgram.connections)} connections, {len(deepgram.connections) - 1} of them reconnects "
        f"to change options between turns; handshake median "
        f"{statistics.median(connects) * 1000 if connects else float('nan'):.1f} ms on loopback)",
        flush=True,
    )
    return run


def _median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def report(before: bench_agent.Run, after: bench_agent.Run, server: str) -> None:
    rounds = len(next(iter(after.turns.values())))
    print(
        f"\nend of caller speech → first agent audio: Deepgram + ElevenLabs (local servers on "
        f"their wire formats), {rounds} rounds of three turns, Temporal on {server}"
    )
    print("before: endpointing = end_silence_ms (800 ms); ElevenLabs auto mode off, pcm_22050")
    print("after:  200 ms endpointing + whole-phrase early end; ElevenLabs auto mode, pcm_16000")
    for kind in KINDS:
        print(f"\n{kind} ({KINDS[kind][1]!r})")
        print(f"  {'part (median ms)':26} {'before':>8} {'after':>8}")
        for index, name in enumerate(bench_agent.PARTS):
            old = _median_ms([t.parts[index] for t in before.turns[kind]])
            new = _median_ms([t.parts[index] for t in after.turns[kind]])
            print(f"  {name:26} {old:8.0f} {new:8.0f}")
        old_total = _median_ms([t.total for t in before.turns[kind]])
        new_total = _median_ms([t.total for t in after.turns[kind]])
        print(
            f"  {'whole (median)':26} {old_total:8.0f} {new_total:8.0f}   ratio {old_total / new_total:.2f}x"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--rounds", type=int, default=8, help="measured rounds of the three turns (default 8)"
    )
    args = parser.parse_args(argv)
    settings = temporal_settings_from_env()

    async def both(temporal: TemporalSettings) -> tuple[bench_agent.Run, bench_agent.Run]:
        before = await measure_cloud(temporal, args.rounds, new=False)
        after = await measure_cloud(temporal, args.rounds, new=True)
        return before, after

    if settings.address is not None:
        before, after = asyncio.run(both(settings))
        report(before, after, settings.address)
    else:
        with EmbeddedTemporal() as server:
            before, after = asyncio.run(both(server.settings()))
            report(before, after, f"the embedded dev server ({server.address})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
