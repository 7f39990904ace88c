"""False early ends of the Smart Turn model on recordings of real people.

Run: ``python -m bench.bench_turn_model --human-audio DIR`` (or with
``VOXFLOW_HUMAN_AUDIO=DIR``; bench.bench_agent runs it after its latency figures). The
model must be fetched (``voxflow models fetch smart-turn``). DIR is a folder of
recordings of real people (.wav, one caller's answer each); without one, only the
model's own time is measured.

Each recording is one caller's whole answer. Its word gaps are found from its energy
(10 ms windows above the peak − 28 dB are sound, dips under 50 ms are bridged,
stretches under 100 ms are clicks), and three things are counted, model off and on,
free speech (no expected phrases) with the flows' default end_silence_ms of 800 ms:

as recorded
    the recording played into a real AgentSession (the audio harness, in real
    time): how many recordings had their turn ended before their last word
    (a false early end), and how many were ended by the model at their real end;
a pause at every word gap
    the same with every word gap stretched to 0.5 s, as a caller who hesitates
    between words: how many gaps ended the turn;
the model's verdict at each gap
    the recording cut at the gap, 0.2 s of silence added (what the model hears
    when the VAD's silence is 0.2 s), asked offline: how many gaps it calls the
    end of the turn (P > 0.5).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python bench/bench_turn_model.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from engine.agent import smart_turn, turn_model_file, wav
from engine.agent.harness import AudioHarness, HarnessOptions
from engine.agent.session import TurnOptions
from engine.agent.turns import EndOfTurn, ExpectingSTT, TurnModel

HUMAN_AUDIO_ENV = "VOXFLOW_HUMAN_AUDIO"
NO_HUMAN_AUDIO = (
    "false early ends: not counted, they need recordings of real people (a folder of .wav, "
    f"one answer each): give --human-audio DIR or set {HUMAN_AUDIO_ENV}=DIR"
)
RATE = 16000
END_SILENCE = 0.8
PAUSE = 0.5
VAD_SILENCE = 0.2
WINDOW = 160  # 10 ms


@dataclass(frozen=True)
class Recording:
    name: str
    samples: np.ndarray  # int16
    gaps: list[tuple[int, int]]  # inner word gaps, samples [start, end)

    def last_sound(self, samples: np.ndarray | None = None) -> float:
        return wav.sound_spans(self.samples if samples is None else samples, RATE)[-1][1]

    def paused(self, seconds: float) -> np.ndarray:
        """The recording with every word gap at least ``seconds`` long (silence added)."""
        pieces, at = [], 0
        for start, end in self.gaps:
            middle = (start + end) // 2
            pieces += [
                self.samples[at:middle],
                np.zeros(max(0, int(seconds * RATE) - (end - start)), np.int16),
            ]
            at = middle
        pieces.append(self.samples[at:])
        return np.concatenate(pieces)


def word_gaps(samples: np.ndarray) -> list[tuple[int, int]]:
    count = len(samples) // WINDOW
    frames = samples[: count * WINDOW].astype(np.float64).reshape(count, WINDOW)
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-9)
    loud = level > level.max() - 28.0
    stretches: list[list[int]] = []
    for index in (int(i) for i in np.flatnonzero(loud)):
        if stretches and index - stretches[-1][1] <= 5:  # bridge dips under 50 ms
            stretches[-1][1] = index + 1
        else:
            stretches.append([index, index + 1])
    words = [s for s in stretches if s[1] - s[0] >= 10]  # 100 ms or more: not a click
    return [(a[1] * WINDOW, b[0] * WINDOW) for a, b in zip(words, words[1:], strict=False)]


def recordings(folder: Path) -> list[Recording]:
    found = []
    for path in sorted(folder.glob("*.wav")):
        samples = np.frombuffer(wav.read_pcm(path, RATE), dtype=np.int16)
        found.append(Recording(path.stem, samples, word_gaps(samples)))
    return found


@dataclass
class Played:
    inside: list[int]  # per clip: turn ends before its last sound
    by_model_at_end: int  # clips whose turn the model ended at their real end


async def play(clips: list[np.ndarray], model: TurnModel | None) -> Played:
    """Each clip as one answer in one real session; its turn ends, counted."""
    options = HarnessOptions(turns=TurnOptions(end_of_turn=EndOfTurn(model=model)))
    played = Played([], 0)
    async with AudioHarness(options=options) as call:
        turns = call.voice.turns
        assert isinstance(turns, ExpectingSTT)  # the offline recogniser's turns
        turns.set_end_silence(END_SILENCE)
        for clip in clips:
            before = len(call.events_of("stt_end_of_speech"))
            early_before = turns.stats.early_model
            start = call.play_caller(np.concatenate([np.zeros(int(0.3 * RATE), np.int16), clip]))
            last_sound = start + 0.3 + wav.sound_spans(clip, RATE)[-1][1]
            await call.wait_until(start + 0.3 + len(clip) / RATE + END_SILENCE + 0.8)
            ends = [e.at for e in call.events_of("stt_end_of_speech")[before:]]
            inside = sum(1 for at in ends if at < last_sound - 0.02)
            played.inside.append(inside)
            if turns.stats.early_model > early_before and inside == 0:
                played.by_model_at_end += 1
    return played


def verdicts(model: smart_turn.SmartTurn, found: list[Recording]) -> list[tuple[str, float, float]]:
    """(recording, gap time in s, P) for every word gap: cut there, 0.2 s of silence added."""
    out = []
    for recording in found:
        for start, _end in recording.gaps:
            cut = np.concatenate([recording.samples[:start], np.zeros(int(VAD_SILENCE * RATE), np.int16)])
            out.append((recording.name, start / RATE, model.finished(cut.tobytes())))
    return out


def alone(model: smart_turn.SmartTurn, runs: int = 30) -> tuple[float, float]:
    """The model's time by itself on a full 8 s turn, features and inference: median and
    90th percentile, ms (beside the time it takes inside a call, where it shares the CPU)."""
    rng = np.random.default_rng(0)
    turn = (rng.standard_normal(smart_turn.N_SAMPLES) * 1000).astype(np.int16).tobytes()
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        model.finished(turn)
        times.append((time.perf_counter() - began) * 1000)
    return float(np.median(times)), float(np.percentile(times, 90))


def human_audio_folder(given: Path | None, env: Mapping[str, str] | None = None) -> Path | None:
    """The recordings' folder: ``--human-audio``, else ``$VOXFLOW_HUMAN_AUDIO``, else none."""
    if given is not None:
        return given
    named = (os.environ if env is None else env).get(HUMAN_AUDIO_ENV, "")
    return Path(named) if named else None


def run_and_report(model: smart_turn.SmartTurn, folder: Path | None) -> None:
    median, p90 = alone(model)
    print(f"the model by itself: {median:.0f} ms median, {p90:.0f} ms p90 (8 s of audio, one thread)")
    if folder is None:
        print(NO_HUMAN_AUDIO)
        return
    found = recordings(folder)
    if not found:
        print(f"false early ends: no recordings in {folder} (give --human-audio DIR)")
        return
    gaps = sum(len(r.gaps) for r in found)
    as_recorded = [r.samples for r in found]
    paused = [r.paused(PAUSE) for r in found]

    async def both() -> tuple[Played, Played, Played, Played]:
        return (
            await play(as_recorded, None),
            await play(as_recorded, model),
            await play(paused, None),
            await play(paused, model),
        )

    off, on, off_paused, on_paused = asyncio.run(both())
    print(
        f"false early ends: {len(found)} recordings of real people ({folder}), {gaps} word gaps; "
        f"free speech, end_silence {END_SILENCE * 1000:.0f} ms"
    )
    print(f"  {'':40} {'model off':>10} {'model on':>10}")
    print(
        f"  {'as recorded: recordings cut inside':40} {_of(off.inside, len(found)):>10} "
        f"{_of(on.inside, len(found)):>10}"
    )
    print(
        f"  {'  ended by the model at the real end':40} {'-':>10} {f'{on.by_model_at_end}/{len(found)}':>10}"
    )
    print(
        f"  {f'a {PAUSE:.1f} s pause at every gap: gaps ended':40} {_sum(off_paused.inside, gaps):>10} "
        f"{_sum(on_paused.inside, gaps):>10}"
    )
    said = verdicts(model, found)
    above = [(name, at, p) for name, at, p in said if p > 0.5]
    print(
        f"  the model's verdict at each gap (cut + {VAD_SILENCE:.1f} s silence): {len(above)}/{len(said)} "
        "called finished"
    )
    for name, at, p in said:
        print(f"    {name:16} gap at {at:5.2f} s: P = {p:.2f}{'  (would end the turn)' if p > 0.5 else ''}")


def _of(inside: list[int], total: int) -> str:
    return f"{sum(1 for n in inside if n)}/{total}"


def _sum(inside: list[int], total: int) -> str:
    return f"{sum(inside)}/{total}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--human-audio",
        type=Path,
        default=None,
        help=f"a folder of recordings of real people (.wav, one answer each; default: ${HUMAN_AUDIO_ENV})",
    )
    args = parser.parse_args(argv)
    path = turn_model_file.find()
    if path is None:
        print(f"the Smart Turn model is not on this machine: run '{turn_model_file.FETCH_COMMAND}'")
        return 1
    run_and_report(smart_turn.load(path), human_audio_folder(args.human_audio))
    return 0


if __name__ == "__main__":
    sys.exit(main())
