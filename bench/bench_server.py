"""What the telephony server adds, measured against Temporal itself in the same run.

Run: ``python -m bench.bench_server`` (starts the embedded Temporal dev server,
or uses ``TEMPORAL_ADDRESS`` when set). Three figures:

signed webhook → workflow started → TeXML response
    a TeXML request signed as Telnyx signs it (Ed25519), over HTTP to the
    server, which verifies it, refuses replays (a claim in the records
    database), routes the number, writes the ringing record, starts the call's
    workflow and answers ``<Dial><Sip>``; against a bare ``client.start_workflow``
    of an empty workflow, interleaved. Target: at most 1.3x. Sent with a
    minimal HTTP/1.1 sender (bench/http_sender.py, as Telnyx's sender is not
    Python); aiohttp's client and a bare HTTP round trip are shown beside it.
hot reload
    from writing a changed flow file to the first call answered on the new
    version (a signed TeXML request whose ringing record carries the new
    version hash). Target: p50 under 300 ms.
I/O node transition with call records on
    bench_runtime's loop of ``database_query`` nodes, on a worker that writes the
    call record (SQLite) and publishes live events for every node, against the
    bare activity round trip. Target: at most 1.3x, as for the runtime.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python bench/bench_server.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio.client import Client

from bench.bare import BareWorkflow, empty_activity
from bench.bench_runtime import flows_text
from bench.http_sender import HttpSender
from engine.language.compile import FlowGraph
from engine.language.project import compile_paths
from engine.runtime.calls import start_call
from engine.runtime.config import RuntimeConfig
from engine.runtime.messages import CallOptions
from engine.runtime.services import RuntimeServices
from engine.runtime.temporal_server import (
    EmbeddedTemporal,
    TemporalSettings,
    connect_client,
    temporal_settings_from_env,
)
from engine.runtime.worker import WorkerOptions, create_worker
from engine.server import events as ev
from engine.server.recorder import CallRecorder
from engine.server.records import open_records
from engine.server.stack import free_port
from engine.server.telnyx import call_id_for

WEBHOOK_TARGET = 1.3
TOKEN = "bench-token"
RELOAD_TARGET_MS = 300.0
IO_TARGET = 1.3
NUMBER = "+15550007000"
FLOW = textwrap.dedent("""\
    flow: bench-hold
    description: Waits; its version changes with every reload of the benchmark.
    start: mark
    nodes:
      mark:
        type: set
        values: {{edition: {edition}}}
        next: wait
      wait:
        type: wait_for_signal
        signal: go
        timeout: 1m
        next: done
        on_timeout: done
      done:
        type: end
    """)
TRIGGER = f'number: "{NUMBER}"\nflow: bench-hold\n'


def write_flows(folder: Path) -> Path:
    """The benchmark's flows folder in ``folder``: the held flow and its trigger."""
    flows = folder / "flows"
    (flows / "triggers").mkdir(parents=True)
    (flows / "hold.yaml").write_text(FLOW.format(edition=1))
    (flows / "triggers" / "bench.yaml").write_text(TRIGGER)
    return flows


class Signer:
    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()
        raw = self.key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        import base64

        self.public = base64.b64encode(raw).decode()

    def headers(self, body: bytes) -> dict[str, str]:
        import base64

        stamp = str(int(time.time()))
        signature = base64.b64encode(self.key.sign(stamp.encode() + b"|" + body)).decode()
        return {
            "telnyx-signature-ed25519": signature,
            "telnyx-timestamp": stamp,
            "Content-Type": "application/x-www-form-urlencoded",
        }


def texml_body(call_sid: str) -> bytes:
    return urllib.parse.urlencode(
        {"CallSid": call_sid, "From": "+15557654321", "To": NUMBER, "CallStatus": "ringing"}
    ).encode()


@dataclass
class StartTimes:
    """Seconds per try, interleaved in one loop so that the machine's noise hits all alike."""

    bare: list[float] = field(default_factory=list)  # client.start_workflow, empty workflow
    direct: list[float] = field(default_factory=list)  # start_call of the same call, no server
    webhook: list[float] = field(default_factory=list)  # signed TeXML webhook, minimal sender
    webhook_aiohttp: list[float] = field(default_factory=list)  # the same, aiohttp's client
    http_floor: list[float] = field(default_factory=list)  # GET /healthz, minimal sender


async def webhook_vs_start(
    client: Client, http: aiohttp.ClientSession, url: str, signer: Signer, graph: FlowGraph, repeats: int
) -> StartTimes:
    """Interleaved: a bare start, the same call started directly, the signed webhook."""
    times = StartTimes()
    queue = f"bench-bare-{uuid.uuid4().hex[:8]}"  # nobody polls it: starting is what counts
    address = urllib.parse.urlsplit(url)
    assert address.hostname is not None and address.port is not None
    async with HttpSender(address.hostname, address.port) as sender:
        for index in range(repeats + 5):  # the first five warm up
            began = time.perf_counter()
            await client.start_workflow(
                BareWorkflow.run, 1, id=f"bench-bare-{uuid.uuid4()}", task_queue=queue
            )
            bare = time.perf_counter() - began

            began = time.perf_counter()
            await start_call(
                client,
                graph,
                uuid.uuid4().hex[:24],
                task_queue=queue,
                call={"caller_number": "+15557654321", "called_number": NUMBER, "flow_id": graph.flow_id},
                options=CallOptions(record=True),
            )
            direct = time.perf_counter() - began

            began = time.perf_counter()
            status, _ = await sender.request("GET", "/healthz")
            floor = time.perf_counter() - began
            assert status == 200

            body = texml_body(f"v3:bench-{uuid.uuid4().hex}")
            headers = signer.headers(body)  # Telnyx's work, not ours
            began = time.perf_counter()
            status, answer = await sender.request("POST", "/webhooks/telnyx/texml", body, headers)
            took = time.perf_counter() - began
            assert status == 200 and b"<Dial>" in answer, answer

            body = texml_body(f"v3:bench-{uuid.uuid4().hex}")
            headers = signer.headers(body)
            began = time.perf_counter()
            async with http.post(f"{url}/webhooks/telnyx/texml", data=body, headers=headers) as response:
                text = await response.text()
            took_aiohttp = time.perf_counter() - began
            assert response.status == 200 and "<Dial>" in text, text
            if index >= 5:
                times.bare.append(bare)
                times.direct.append(direct)
                times.http_floor.append(floor)
                times.webhook.append(took)
                times.webhook_aiohttp.append(took_aiohttp)
    return times


async def hot_reload(
    url: str, http: aiohttp.ClientSession, signer: Signer, flow_file: Path, rounds: int
) -> list[float]:
    """From writing the file to the first call whose record carries the new version."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    times = []
    for edition in range(2, rounds + 2):
        async with http.get(f"{url}/api/flows/bench-hold", headers=headers) as response:
            old = (await response.json())["version"]
        await asyncio.sleep(0.15)  # let the watcher settle between rounds
        began = time.perf_counter()
        flow_file.write_text(FLOW.format(edition=edition))
        while True:
            call_sid = f"v3:reload-{uuid.uuid4().hex}"
            body = texml_body(call_sid)
            async with http.post(
                f"{url}/webhooks/telnyx/texml", data=body, headers=signer.headers(body)
            ) as response:
                await response.read()
            async with http.get(f"{url}/api/calls/{call_id_for(call_sid)}", headers=headers) as response:
                record = await response.json()
            if record.get("flow_version") not in (None, old):
                break
            if time.perf_counter() - began > 10:
                raise AssertionError("the new version was never served")
            await asyncio.sleep(0.005)
        times.append(time.perf_counter() - began)
    return times


async def server_side_median(http: aiohttp.ClientSession, url: str) -> float:
    """The server's own handling time of answered TeXML requests, p50, from /metrics.

    Read from the histogram's buckets as Prometheus's histogram_quantile does
    (linear within the bucket), so it is an estimate; the mean would be pulled
    up by the few slow starts in the tail.
    """
    async with http.get(f"{url}/metrics") as response:
        text = await response.text()
    bucket = re.compile(
        r'voxflow_webhook_duration_seconds_bucket\{endpoint="texml",'
        r'le="([^"]+)",outcome="dial"\} (\S+)'
    )
    buckets = sorted((float(bound), float(count)) for bound, count in bucket.findall(text))
    half = buckets[-1][1] / 2  # the last bucket is +Inf: every request
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= half:
            if bound == float("inf"):
                return lower_bound
            return lower_bound + (bound - lower_bound) * (half - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    raise AssertionError("no TeXML request was answered")


async def start_server(
    temporal: TemporalSettings, signer: Signer, folder: Path, flows: Path, checkout: Path | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """`voxflow serve` in its own process, as in production (Telnyx is not in our process).

    ``checkout``: run that checkout's code instead of this one's (``python -m``
    imports from its working folder first; bench/compare_servers.py).
    """
    port = free_port()
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": temporal.address or "",
        "TEMPORAL_NAMESPACE": temporal.namespace,
        "TELNYX_PUBLIC_KEY": signer.public,
        "VOXFLOW_API_TOKEN": TOKEN,
        "VOXFLOW_RECORDS_URL": f"sqlite:///{folder}/calls-{port}.db",
        "VOXFLOW_FLOWS": str(flows),
    }
    env.pop("VOXFLOW_REDIS_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "engine.cli.main", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=checkout,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            try:
                async with http.get(f"{url}/healthz") as response:
                    if response.status == 200:
                        return process, url
            except aiohttp.ClientError:
                pass
            if process.poll() is not None:
                raise RuntimeError("voxflow serve stopped at start")
            await asyncio.sleep(0.05)
    raise RuntimeError("voxflow serve did not start")


async def io_with_records(client: Client, io_nodes: int, repeats: int) -> tuple[list[float], list[float]]:
    with tempfile.TemporaryDirectory() as folder:
        for name, text in flows_text(io_nodes).items():
            Path(folder, name).write_text(text, encoding="utf-8")
        graph = compile_paths([folder]).flows["bench-io"]
        records = await open_records(f"sqlite:///{folder}/calls.db").open()
        hub = ev.EventHub()
        hub.bind()
        seen: list[ev.LiveEvent] = []
        hub.listen(seen.append)
        services = RuntimeServices(
            RuntimeConfig(databases={"bench": "sqlite:///:memory:"}),
            recorder=CallRecorder(records, ev.LocalPublisher(hub)),
        )
        queue = f"bench-io-{uuid.uuid4().hex[:8]}"
        worker = create_worker(
            client,
            services,
            WorkerOptions(task_queue=queue),
            extra_workflows=[BareWorkflow],
            extra_activities=[empty_activity],
        )
        bare_times, io_times = [], []
        options = CallOptions(history_event_limit=50_000, record=True)
        async with worker:
            for index in range(repeats + 1):
                began = time.perf_counter()
                await client.execute_workflow(
                    BareWorkflow.run, io_nodes, id=f"bench-bare-{uuid.uuid4()}", task_queue=queue
                )
                bare = (time.perf_counter() - began) / io_nodes
                call_id = uuid.uuid4().hex[:24]
                began = time.perf_counter()
                handle = await start_call(
                    client, graph, call_id, options=options, call={"flow_id": graph.flow_id}, task_queue=queue
                )
                result = await handle.result()
                io = (time.perf_counter() - began) / io_nodes
                assert result.status == "completed", result.reason
                record = await records.get_call(call_id)
                assert record is not None and record["status"] == "completed"
                if index:
                    bare_times.append(bare)
                    io_times.append(io)
        await services.close()
        await records.close()
        assert any(e.type == ev.CALL_NODE_CHANGE for e in seen)
        return bare_times, io_times


async def run(settings: TemporalSettings, repeats: int, rounds: int, io_nodes: int) -> bool:
    client = await connect_client(settings)
    signer = Signer()
    with tempfile.TemporaryDirectory() as folder:
        flows = write_flows(Path(folder))
        flow_file = flows / "hold.yaml"
        graph = compile_paths([flows]).flows["bench-hold"]
        process, url = await start_server(settings, signer, Path(folder), flows)
        try:
            async with aiohttp.ClientSession() as http:
                starts = await webhook_vs_start(client, http, url, signer, graph, repeats)
                inside = await server_side_median(http, url)
                reloads = await hot_reload(url, http, signer, flow_file, rounds)
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(20)
    # Ten recorded calls by default: with five, the ratio moved by 0.2x between runs.
    io_bare, io_records = await io_with_records(client, io_nodes, max(5, repeats // 10))

    bare = statistics.median(starts.bare)
    start_ratio = statistics.median(starts.webhook) / bare
    reload_p50 = statistics.median(reloads) * 1000
    reload_p90 = sorted(reloads)[max(0, int(len(reloads) * 0.9) - 1)] * 1000
    io_ratio = statistics.median(io_records) / statistics.median(io_bare)
    print(
        f"voxflow server benchmark ({len(starts.webhook)} webhooks, {len(reloads)} reloads; "
        "`voxflow serve` in its own process)"
    )
    print(f"{'what':46} {'median':>10}  {'ratio':>6}  result")

    def row(what: str, values: list[float], note: str = "") -> None:
        median = statistics.median(values)
        print(f"{what:46} {median * 1000:8.2f} ms  {median / bare:5.2f}x  {note}".rstrip())

    row("bare client.start_workflow (empty workflow)", starts.bare)
    row("start_call of the same call, no server", starts.direct)
    row(
        "signed TeXML webhook → started → answered",
        starts.webhook,
        f"target <= {WEBHOOK_TARGET}x: {'met' if start_ratio <= WEBHOOK_TARGET else 'MISSED'}",
    )
    row("  the same, sent with aiohttp's client", starts.webhook_aiohttp)
    row("  an HTTP round trip alone (GET /healthz)", starts.http_floor, "what any HTTP webhook costs")
    print(
        f"{'  inside the server (its histogram, p50)':46} {inside * 1000:8.2f} ms  "
        f"{inside / bare:5.2f}x  (verify, claim, record, start, answer)"
    )
    print(
        f"{'hot reload: file written → new version serves':46} {reload_p50:8.1f} ms  "
        f"{'':>6}  p90 {reload_p90:.0f} ms; target p50 < {RELOAD_TARGET_MS:.0f} ms: "
        f"{'met' if reload_p50 < RELOAD_TARGET_MS else 'MISSED'}"
    )
    print(f"{'bare activity round trip':46} {statistics.median(io_bare) * 1000:8.2f} ms  {'1.00x':>6}")
    print(
        f"{'I/O node transition, call records on':46} "
        f"{statistics.median(io_records) * 1000:8.2f} ms  {io_ratio:5.2f}x  target <= "
        f"{IO_TARGET}x: {'met' if io_ratio <= IO_TARGET else 'MISSED'}"
    )
    return start_ratio <= WEBHOOK_TARGET and reload_p50 < RELOAD_TARGET_MS and io_ratio <= IO_TARGET


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--repeats", type=int, default=100, help="webhooks (and bare starts)")
    parser.add_argument("--reloads", type=int, default=15, help="hot reload rounds")
    parser.add_argument("--io-nodes", type=int, default=40, help="I/O nodes per recorded call")
    args = parser.parse_args(argv)
    settings = temporal_settings_from_env()
    if settings.address is not None:
        ok = asyncio.run(run(settings, args.repeats, args.reloads, args.io_nodes))
    else:
        with EmbeddedTemporal() as server:
            ok = asyncio.run(run(server.settings(), args.repeats, args.reloads, args.io_nodes))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
