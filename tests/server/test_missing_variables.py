"""A variable missing at run time reaches the monitor's live stream and /metrics.

The worker's recorder (engine.server.recorder.CallRecorder) publishes
call:variable_missing through the same publisher and hub the server uses; the
hub's listener is the server's Metrics, as in ServerContext.
"""

from __future__ import annotations

import asyncio

from engine.runtime.messages import missing_message
from engine.server import events as ev
from engine.server.metrics import Metrics
from engine.server.recorder import CallRecorder


def test_a_missing_variable_is_a_live_event_and_a_metric() -> None:
    async def scenario() -> None:
        hub = ev.EventHub()
        hub.bind()
        metrics = Metrics()
        hub.listen(metrics.observe_event)
        recorder = CallRecorder(None, ev.LocalPublisher(hub))
        async with hub.subscribe() as subscription:
            message = missing_message("booking", "thank", ["nmae.transcript"], "c-1")
            await recorder.variables_missing(
                "c-1", "booking", "booking", "thank", ["nmae.transcript"], message
            )
            _, event = await asyncio.wait_for(subscription.queue.get(), 5)
        assert event.type == ev.CALL_VARIABLE_MISSING and event.call_id == "c-1"
        assert event.data["names"] == ["nmae.transcript"] and event.data["node_id"] == "thank"
        assert "flow 'booking', node 'thank'" in event.data["message"]
        assert "'nmae.transcript'" in event.data["message"] and "c-1" in event.data["message"]
        text = metrics.render().decode()
        assert 'voxflow_missing_variables_total{flow_id="booking"} 1.0' in text

    asyncio.run(scenario())
