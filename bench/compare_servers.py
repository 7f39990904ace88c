"""Which of two checkouts answers a signed webhook faster: both servers in one run, paired.

Run: ``python -m bench.compare_servers OTHER`` where OTHER is another checkout
of voxflow (e.g. ``git worktree add /tmp/before HEAD~3``). It starts
``voxflow serve`` from this checkout and from OTHER against one embedded
Temporal dev server, and sends each the same signed TeXML webhooks, taking
turns request by request (and swapping who goes first every round), beside a
bare ``client.start_workflow``.

Why: bench_server's webhook ratio moves by ±0.05x from one run to the next on
a shared machine, which hides changes of a few percent. Measured side by side
in one run, both servers meet the same noise; a change is real when it wins
in most of several runs (``--runs``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python bench/compare_servers.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from temporalio.client import Client

from bench.bare import BareWorkflow
from bench.bench_server import Signer, start_server, texml_body, write_flows
from bench.http_sender import HttpSender
from engine.runtime.temporal_server import EmbeddedTemporal, TemporalSettings, connect_client

THIS_CHECKOUT = Path(__file__).resolve().parent.parent


def engine_folder(checkout: Path) -> Path:
    """Where ``python -m engine...`` run in ``checkout`` imports voxflow from."""
    found = subprocess.run(
        [sys.executable, "-c", "import engine; print(engine.__file__)"],
        cwd=checkout,
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(found.stdout.strip()).parent


async def one_run(settings: TemporalSettings, checkouts: list[Path], repeats: int) -> dict[str, float]:
    """Median seconds per checkout's webhook, and of the bare start ("bare")."""
    client = await connect_client(settings)
    signer = Signer()
    times: dict[str, list[float]] = {"bare": [], **{str(c): [] for c in checkouts}}
    queue = f"compare-bare-{uuid.uuid4().hex[:8]}"  # nobody polls it: starting is what counts
    with tempfile.TemporaryDirectory() as folder:
        flows = write_flows(Path(folder))
        servers = [
            await start_server(settings, signer, Path(folder), flows, checkout) for checkout in checkouts
        ]
        try:
            async with contextlib.AsyncExitStack() as stack:
                senders = [
                    await stack.enter_async_context(HttpSender(address.hostname or "", address.port or 0))
                    for address in (urllib.parse.urlsplit(url) for _, url in servers)
                ]
                await take_turns(client, signer, queue, checkouts, senders, repeats, times)
        finally:
            for process, _ in servers:
                process.send_signal(signal.SIGINT)
                process.wait(20)
    return {name: statistics.median(values) for name, values in times.items()}


async def take_turns(
    client: Client,
    signer: Signer,
    queue: str,
    checkouts: list[Path],
    senders: list[HttpSender],
    repeats: int,
    times: dict[str, list[float]],
) -> None:
    """A bare start, then each server's webhook in turn (who goes first swaps every round)."""
    for index in range(repeats + 5):  # the first five warm up
        began = time.perf_counter()
        await client.start_workflow(BareWorkflow.run, 1, id=f"compare-{uuid.uuid4()}", task_queue=queue)
        if index >= 5:
            times["bare"].append(time.perf_counter() - began)
        turns = list(zip(checkouts, senders, strict=True))
        if index % 2:
            turns.reverse()
        for checkout, sender in turns:
            await sender.request("GET", "/healthz")  # as bench_server does
            body = texml_body(f"v3:compare-{uuid.uuid4().hex}")
            headers = signer.headers(body)
            began = time.perf_counter()
            status, answer = await sender.request("POST", "/webhooks/telnyx/texml", body, headers)
            took = time.perf_counter() - began
            assert status == 200 and b"<Dial>" in answer, (checkout, answer)
            if index >= 5:
                times[str(checkout)].append(took)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("other", type=Path, help="another checkout of voxflow to compare with")
    parser.add_argument("--repeats", type=int, default=300, help="webhooks per server per run")
    parser.add_argument("--runs", type=int, default=4, help="runs, each with fresh servers")
    args = parser.parse_args(argv)
    checkouts = [args.other.resolve(), THIS_CHECKOUT]
    for checkout in checkouts:
        if (found := engine_folder(checkout)) != checkout / "engine":
            print(f"{checkout}: python run there does not import its own engine/ ({found})", file=sys.stderr)
            return 1
    print(
        f"signed TeXML webhook as a ratio to a bare client.start_workflow, per run; "
        f"'{checkouts[0]}' then this checkout"
    )
    wins = 0
    with EmbeddedTemporal() as server:
        for run in range(1, args.runs + 1):
            medians = asyncio.run(one_run(server.settings(), checkouts, args.repeats))
            bare = medians["bare"]
            other, this = (medians[str(c)] / bare for c in checkouts)
            wins += this < other
            print(
                f"run {run}: bare {bare * 1000:.2f} ms   other {other:.3f}x   "
                f"this {this:.3f}x   difference {this - other:+.3f}x",
                flush=True,
            )
    print(f"this checkout was faster in {wins} of {args.runs} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
