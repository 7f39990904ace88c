"""How long the command line takes to answer, as a ratio to importing its three libraries.

The baseline is ``python -c "import yaml, jsonschema, jinja2"`` (what any
validator must load); against it we time ``voxflow --help`` and ``voxflow
validate flows/`` on the example flows, each a fresh process, alternating
so that machine noise hits both alike. Target: validate within 3x.

    python -m bench.bench_cli [--rounds 7] [--flows flows]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_RATIO = 3.0
ROOT = Path(__file__).resolve().parent.parent
BASELINE = [sys.executable, "-c", "import yaml, jsonschema, jinja2"]


def voxflow(*args: str) -> list[str]:
    return [sys.executable, "-m", "engine.cli.main", *args]


def timed(command: list[str]) -> float:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH", "")])]),
    }
    start = time.perf_counter()
    done = subprocess.run(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr[-500:]}")
    return elapsed


def measure(rounds: int, flows: str) -> dict[str, float]:
    commands = {
        "baseline": BASELINE,
        "help": voxflow("--help"),
        "validate": voxflow("validate", flows),
    }
    for command in commands.values():
        timed(command)  # warm the file cache (and .pyc files) once
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, command in commands.items():
            times[name].append(timed(command))
    return {name: statistics.median(values) for name, values in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--flows", default="flows")
    args = parser.parse_args(argv)
    median = measure(args.rounds, args.flows)
    base = median["baseline"]
    print(f'python -c "import yaml, jsonschema, jinja2"   median {base * 1000:7.0f} ms')
    for name, label in (("help", "voxflow --help"), ("validate", f"voxflow validate {args.flows}")):
        ratio = median[name] / base
        print(f"{label:<44} median {median[name] * 1000:7.0f} ms   {ratio:5.2f}x")
    ratio = median["validate"] / base
    verdict = "OK" if ratio <= TARGET_RATIO else "ABOVE TARGET"
    print(f"validate ratio {ratio:.2f}x (target <= {TARGET_RATIO:g}x: {verdict})")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    raise SystemExit(main())
