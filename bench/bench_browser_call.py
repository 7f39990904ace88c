"""End of caller speech → first agent audio at the browser caller, beside the harness figure.

Run: ``python -m bench.bench_browser_call [--turns 10]``.

The browser path: a real ``voxflow dev`` (its own process: embedded Temporal and
Redis, SQLite records, the worker, the server and its voice agent on offline
engines) runs a flow whose menu asks "Say balance." and whose next node answers.
This process plays the monitor page's part on the caller socket (/api/caller):
it streams a microphone in real time (20 ms frames of 16-bit PCM at 48 kHz, as a
browser's AudioContext makes them, silence between answers) and says espeak-ng's
"balance" 0.3 s after each question has been said. A turn is measured from the
moment the last sound of "balance" is sent to the first frame of the answer's
audio that arrives back (non-silent).

The baseline, in the same run: ``bench.bench_agent``'s figure for the same turn
on the audio harness (no browser, no server, no socket: the agent hears the
line directly). Their ratio is the browser path's own cost: resampling, the
socket both ways, the server's process and its Redis bus instead of memory.
The first turn of each warms up and is not counted; figures are medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python bench/bench_browser_call.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
import numpy as np

from bench import bench_agent
from engine.agent import espeak, wav
from engine.dev.agent_choice import find_running
from engine.runtime.temporal_server import EmbeddedTemporal
from engine.server.stack import free_port

MIC_RATE = 48000
FRAME = MIC_RATE // 50  # 20 ms
ANSWER_DELAY = 0.3
VOICED = 500  # a sample above this (of 32768) is sound, not silence
QUESTION, ANSWER = "Say balance.", "Balance it is."
# bench.bench_agent's flow, with a way out: a flow voxflow dev serves must be able to end.
FLOW = (
    bench_agent.MENU_FLOW.replace(
        "      - {phrases: [balance, agent], next: answer}\n",
        "      - {phrases: [balance, agent], next: answer}\n      - {phrases: [goodbye], next: bye}\n",
    )
    + "  bye:\n    type: voice_hangup\n"
)


def _caller_speech() -> tuple[np.ndarray, float]:
    """ "balance" at 48 kHz, and the second at which its last sound ends."""
    pcm, rate = espeak.synthesize_pcm("balance")
    samples = np.frombuffer(wav.resample(pcm, rate, MIC_RATE), dtype=np.int16)
    return samples, wav.sound_spans(samples, MIC_RATE)[-1][1]


class DevProcess:
    """``voxflow dev`` on the benchmark's flow, in a folder of its own."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="voxflow-bench-browser-"))
        (self.folder / "flows").mkdir()
        (self.folder / "flows" / "bench-agent.yaml").write_text(FLOW)
        self.output = self.folder / "terminal.txt"
        self.process: subprocess.Popen[bytes] | None = None
        self.url = self.token = ""

    def __enter__(self) -> DevProcess:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("VOXFLOW_API_TOKEN", "LIVEKIT_URL", "VOXFLOW_STT", "VOXFLOW_TTS")
        }
        with self.output.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "engine.cli.main", "dev", "--port", str(free_port())],
                cwd=self.folder,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 180
        while True:
            # Where the running dev is, as `voxflow chat` finds it (.voxflow/dev.json).
            found = find_running(self.folder / ".voxflow")
            if found is not None:
                self.url, self.token = found[0], found[1] or ""
                return self
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("voxflow dev did not start:\n" + self.output.read_text(errors="replace"))
            time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


async def measure_browser(dev: DevProcess, turns: int) -> list[float]:
    speech, sound_end = _caller_speech()
    pending: list[np.ndarray] = []  # what the microphone is about to send
    sent_end: list[float] = []  # when the last sound of each answer was sent
    voiced: list[float] = []  # when each non-silent frame of the agent arrived
    questions: asyncio.Queue[float] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    async def microphone(ws: aiohttp.ClientWebSocketResponse) -> None:
        next_at = loop.time()
        buffer = np.zeros(0, dtype=np.int16)
        mark: float | None = None  # samples of the current answer still to send before its end
        while True:
            if not len(buffer) and pending:
                buffer = pending.pop(0)
                mark = sound_end * MIC_RATE
            frame = buffer[:FRAME] if len(buffer) else np.zeros(FRAME, dtype=np.int16)
            if len(frame) < FRAME:
                frame = np.concatenate([frame, np.zeros(FRAME - len(frame), dtype=np.int16)])
            buffer = buffer[FRAME:]
            await ws.send_bytes(frame.astype("<i2").tobytes())
            if mark is not None:
                mark -= FRAME
                if mark <= 0:
                    sent_end.append(loop.time() + mark / MIC_RATE)  # mark ≤ 0: within this frame
                    mark = None
            next_at += FRAME / MIC_RATE
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    async def listen(ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            now = loop.time()
            if message.type == aiohttp.WSMsgType.BINARY:
                if np.abs(np.frombuffer(message.data, dtype="<i2")).max(initial=0) > VOICED:
                    voiced.append(now)
            elif message.type == aiohttp.WSMsgType.TEXT:
                data = json.loads(message.data)
                if data["type"] == "transcript" and data.get("text") == QUESTION:
                    questions.put_nowait(now)  # said to its end (engine.server.recorder)
                elif data["type"] in ("ended", "error"):
                    raise RuntimeError(f"the call stopped: {data}")

    figures: list[float] = []
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{dev.url}/api/caller?token={dev.token}")
        await ws.send_json({"type": "start", "flow": "bench-agent", "rate": MIC_RATE})
        tasks = [asyncio.ensure_future(microphone(ws)), asyncio.ensure_future(listen(ws))]
        try:
            for turn in range(turns + 1):
                asked = asyncio.ensure_future(questions.get())
                await asyncio.wait({asked, tasks[1]}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
                if not asked.done():
                    asked.cancel()
                    if tasks[1].done():
                        tasks[1].result()  # the call stopped: say why
                    raise TimeoutError("the question was not asked within 60 s")
                await asyncio.sleep(ANSWER_DELAY)
                pending.append(speech)
                while len(sent_end) <= turn:
                    await asyncio.sleep(0.005)
                end = sent_end[turn]
                while not any(at > end for at in voiced):
                    await asyncio.sleep(0.005)
                    if loop.time() - end > 20:
                        raise TimeoutError("no answer within 20 s")
                if turn:  # the first turn warms up
                    figures.append(min(at for at in voiced if at > end) - end)
            await ws.send_json({"type": "hangup"})
        finally:
            for task in tasks:
                task.cancel()
            await ws.close()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--turns", type=int, default=10, help="measured turns (default 10)")
    args = parser.parse_args(argv)
    with DevProcess() as dev:
        browser = asyncio.run(measure_browser(dev, args.turns))
    with EmbeddedTemporal() as server:
        with tempfile.TemporaryDirectory() as folder:
            run = asyncio.run(
                bench_agent.measure(
                    server.settings(),
                    args.turns,
                    new=True,
                    cache_dir=Path(folder),
                    flow=bench_agent.MENU_FLOW,
                    kinds={"menu answer": bench_agent.KINDS["menu answer"]},
                )
            )
        harness = [turn.total for turn in run.turns["menu answer"]]
    b, h = statistics.median(browser), statistics.median(harness)
    spread = f"{min(browser) * 1000:.0f}–{max(browser) * 1000:.0f}"
    print(f"end of caller speech → first agent audio, offline engines, median of {args.turns} turns:")
    print(f"  browser caller (voxflow dev, caller socket): {b * 1000:6.0f} ms  (range {spread})")
    print(
        f"  audio harness (bench.bench_agent):           {h * 1000:6.0f} ms  (range "
        f"{min(harness) * 1000:.0f}–{max(harness) * 1000:.0f})"
    )
    print(f"  ratio browser / harness: {b / h:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
