"""The monitor's drop-off view in headless Chromium: traffic over the diagram, a call made a test.

Ten ended calls of the survey flow's current version are in the records (as
the worker writes them); the page draws under each node the share of calls
that reached it and that ended there, and edges as thick as their traffic. A
screenshot is kept (``voxflow-monitor-traffic.png`` in the temp folder, or
VOXFLOW_SCREENSHOT_DIR). Then "Make a test" writes one of the calls as a test.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from tests.server.browser import Browser, find_chromium
from tests.server.support import API_TOKEN, harness
from tests.server.test_monitor_page import _keep

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)"
)
FULL = ["hello", "ask_name", "remember", "ask_reason", "bye"]
CALLS = (
    [(FULL, "completed")] * 6
    + [(["hello", "ask_name", "bye"], "completed")] * 3
    + [(["hello", "ask_name"], "user_hangup")]
)


def test_the_monitor_draws_drop_off_over_the_diagram(temporal_settings: Any, tmp_path: Path) -> None:
    async def scenario() -> None:
        assert CHROMIUM is not None
        async with harness(temporal_settings, tmp_path, run_worker=False) as h, Browser(CHROMIUM) as browser:
            version = h.ctx.library.flow("survey").version
            now = time.time()
            for index, (path, status) in enumerate(CALLS):
                call = f"traffic{index}"
                await h.ctx.records.call_started(
                    call,
                    flow_id="survey",
                    flow_version=version,
                    call={"caller_number": "+15557654321"},
                    answered_at=now - 3600 - index,
                )
                await h.ctx.records.call_ended(
                    call, status=status, reason="", variables={}, path=path, events=[], ended_at=now - 3000
                )
            await browser.goto(f"{h.url}/monitor/#token={API_TOKEN}")
            await browser.wait_for("document.body.dataset.ready === 'true'")
            await browser.evaluate("document.querySelector('#flow-list li[data-flow=\"survey\"]').click()")
            await browser.wait_for("document.querySelector('#diagram svg[data-flow=\"survey\"]') !== null")
            await browser.evaluate("document.getElementById('traffic').click()")
            await browser.wait_for("document.querySelectorAll('#diagram .traffic-label').length === 5")
            labels = await browser.evaluate(
                "Object.fromEntries([...document.querySelectorAll('#diagram g.node')]"
                ".map(n => [n.dataset.node, n.querySelector('.traffic-label text')"
                ".textContent]))"
            )
            assert labels == {
                "hello": "100% reached · 0% ended",
                "ask_name": "100% reached · 10% ended",
                "remember": "60% reached · 0% ended",
                "ask_reason": "60% reached · 0% ended",
                "bye": "90% reached · 90% ended",
            }, labels
            drops = await browser.evaluate(
                "[...document.querySelectorAll('#diagram .traffic-label.drop')]"
                ".map(l => l.parentNode.dataset.node)"
            )
            assert drops == ["bye"]
            widths = await browser.evaluate(
                "Object.fromEntries([...document.querySelectorAll('#diagram path.edge"
                "[data-source]')].map(e => [e.dataset.source + '>' + e.dataset.target, "
                "parseFloat(getComputedStyle(e).strokeWidth)]))"
            )
            assert widths["hello>ask_name"] > widths["ask_name>remember"] > widths["ask_name>bye"] > 1.4, (
                widths
            )
            summary = await browser.evaluate("document.getElementById('flow-stats').textContent")
            assert summary.startswith("10 calls · completed 90%"), summary
            shot = await browser.screenshot(tmp_path / "traffic.png")
            _keep(shot, "voxflow-monitor-traffic.png")

            # A call of the history becomes a test.
            await browser.evaluate("document.querySelector('#history tr[data-call=\"traffic6\"]').click()")
            await browser.wait_for("!document.getElementById('call-detail').hidden")
            await browser.evaluate("document.getElementById('make-test').click()")
            made = await browser.wait_for(
                "document.getElementById('made-test').textContent.startsWith('Wrote') && "
                "document.getElementById('made-test').textContent"
            )
            assert "survey.call-traffic6.test.yaml" in made, made
            written = tmp_path / "flows" / "tests" / "survey.call-traffic6.test.yaml"
            assert "- ask_name\n    - bye" in written.read_text()

    asyncio.run(scenario())
