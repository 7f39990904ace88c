"""How often a waiting node reports to Temporal, and that a hangup still reaches it.

A hangup cancels a running node through Temporal, which tells the node on its next
heartbeat: so nodes heartbeat every second. Voice nodes hear the hangup on the voice
bus themselves (HEARS_HANGUP), so they heartbeat only as often as noticing a dead
worker needs (a third of the heartbeat timeout), which spares the Temporal server a
write per waiting caller per second.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from temporalio.api.enums.v1 import EventType

from engine.language.project import compile_paths
from engine.runtime import messages as m
from engine.runtime.activities import MAX_HEARTBEAT_GAP, heartbeat_gap
from engine.runtime.calls import call_handle, hang_up, start_call
from engine.runtime.temporal_server import TemporalSettings
from engine.simulate.session import EngineOptions, SimulatorEngine
from engine.voice.simulated_agent import SimulatedAgent

FLOW = """\
flow: nobody-answers
description: One question that nobody answers for a long time.
settings:
  no_input_timeout: 60s
start: ask
nodes:
  ask:
    type: voice_listen
    prompt: "Is anybody there?"
    save_as: answer
    no_input:
      - next: done
    next: done
  done:
    type: end
"""


def test_the_gap_between_heartbeats() -> None:
    ten = timedelta(seconds=10)
    assert heartbeat_gap(ten, hears_hangup=False) == MAX_HEARTBEAT_GAP
    assert heartbeat_gap(ten, hears_hangup=True) == 10 / 3
    assert heartbeat_gap(timedelta(seconds=2), hears_hangup=False) == 0.5
    assert heartbeat_gap(timedelta(seconds=2), hears_hangup=True) == 2 / 3
    assert heartbeat_gap(None, hears_hangup=True) == MAX_HEARTBEAT_GAP


def test_a_waiting_voice_node_heartbeats_rarely_and_still_hears_a_hangup(
    temporal_settings: TemporalSettings,
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "flow.yaml").write_text(FLOW, encoding="utf-8")
        graph = compile_paths([folder]).flows["nobody-answers"]

    async def scenario() -> tuple[set[float], float, m.CallResult, list[int]]:
        # The worker's own heartbeat throttle (1 s) as in production, not the simulator's.
        options = EngineOptions(temporal=temporal_settings, heartbeat_throttle=1.0)
        async with SimulatorEngine(options) as engine:
            call_id = f"heartbeats-{time.monotonic_ns()}"
            agent = SimulatedAgent(await engine.caller_bus(), call_id)  # never answers
            agent.start()
            handle = await start_call(engine.client, graph, call_id, task_queue=engine.task_queue)
            beats: set[float] = set()
            watched_until = time.monotonic() + 7.5
            while time.monotonic() < watched_until:
                description = await call_handle(engine.client, call_id).describe()
                for pending in description.raw_description.pending_activities:
                    if pending.HasField("last_heartbeat_time"):
                        beats.add(pending.last_heartbeat_time.ToSeconds())
                await asyncio.sleep(0.2)  # the behaviour under test: heartbeats over 7.5 s, sampled
            # Only Temporal is told (the agent does not say call:caller_left): the node
            # still hears it, on its next heartbeat.
            began = time.monotonic()
            await hang_up(engine.client, call_id, "the caller hung up")
            result = await handle.result()
            took = time.monotonic() - began
            history = await handle.fetch_history()
            await agent.stop()
            return beats, took, result, [event.event_type for event in history.events]

    beats, took, result, events = asyncio.run(scenario())
    # Over 7.5 s, one heartbeat a second would be 7 or 8; one every 3.3 s is 2 or 3.
    assert 1 <= len(beats) <= 3, sorted(beats)
    assert result.status == m.USER_HANGUP
    assert took < 3.4 + 3.0  # the gap, plus time for a busy machine
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED in events
