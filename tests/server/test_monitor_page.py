"""The monitor page in headless Chromium, during a live call and after it.

The call is real (signed webhooks, Temporal, the simulated agent on the
voice bus); the page is served by the server and reads the API and the live
event stream like any browser. A screenshot of the live call is kept
(``voxflow-monitor-live-call.png`` in the temp folder, or VOXFLOW_SCREENSHOT_DIR).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from engine.server.telnyx import call_id_for
from engine.voice.memory_bus import MemoryVoiceBus
from engine.voice.simulated_agent import Say, SimulatedAgent
from tests.server.browser import Browser, find_chromium
from tests.server.support import API_TOKEN, call_event, harness, telnyx_call_id, texml_form

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)"
)


def _keep(screenshot: Path, name: str) -> Path:
    folder = Path(os.environ.get("VOXFLOW_SCREENSHOT_DIR") or tempfile.gettempdir())
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(screenshot, folder / name))


def test_the_monitor_shows_a_live_call_and_its_history(temporal_settings: Any, tmp_path: Path) -> None:
    async def scenario() -> None:
        bus = MemoryVoiceBus()
        assert CHROMIUM is not None
        async with harness(temporal_settings, tmp_path, voice_bus=bus) as h, Browser(CHROMIUM) as browser:
            await browser.goto(f"{h.url}/monitor/#token={API_TOKEN}")
            await browser.wait_for("document.body.dataset.ready === 'true'")
            await browser.wait_for("document.querySelector('#diagram svg .node') !== null")
            flows = await browser.evaluate(
                "[...document.querySelectorAll('#flow-list li')].map(li => li.dataset.flow)"
            )
            assert {"greeting", "hold", "survey", "voicemail"} <= set(flows)
            numbers = await browser.evaluate(
                "[...document.querySelectorAll('#trigger-table tbody tr td:first-child')]"
                ".map(td => td.textContent)"
            )
            assert "+15550006000" in numbers

            telnyx_id = telnyx_call_id()
            call_id = call_id_for(telnyx_id)
            status, _ = await h.texml(texml_form(telnyx_id, called="+15550006000", caller="+15557654321"))
            assert status == 200
            agent = SimulatedAgent(bus, call_id, [Say("Ada Lovelace")], reaction=0.2)
            agent.start()

            # The call is selected by itself; its node is lit on the flow's diagram.
            await browser.wait_for(
                'document.querySelector(\'#diagram svg[data-flow="survey"] '
                '.node.current[data-node="ask_reason"]\') !== null',
                timeout=20,
            )
            await browser.wait_for(
                "document.querySelector('#transcript').textContent.includes('Ada Lovelace')"
            )
            await browser.wait_for("document.querySelector('#variables').textContent.includes('caller_name')")
            await browser.wait_for(
                "document.querySelector('#transcript').textContent"
                ".includes('Thank you, Ada Lovelace. How can we help today?')"
            )
            live = await browser.evaluate("document.querySelector('#live-calls').textContent")
            assert "+15557654321" in live and "ask_reason" in live
            visited = await browser.evaluate(
                "[...document.querySelectorAll('#diagram .node.visited')].map(n => n.dataset.node)"
            )
            assert {"hello", "ask_name", "remember"} <= set(visited)
            shot = await browser.screenshot(tmp_path / "live-call.png")
            _keep(shot, "voxflow-monitor-live-call.png")

            response = await h.post_event(call_event("call.hangup", telnyx_id, called="+15550006000"))
            assert response.status == 200
            await browser.wait_for(
                "[...document.querySelectorAll('#history tbody tr')].some(tr => "
                f"tr.dataset.call === '{call_id}' && tr.textContent.includes('user_hangup'))"
            )
            await browser.wait_for("document.querySelector('#diagram .node.current') === null")
            assert "No calls in progress" in await browser.evaluate(
                "document.querySelector('#live-calls').textContent"
            )
            _keep(await browser.screenshot(tmp_path / "history.png"), "voxflow-monitor-history.png")
            errors = [line for line in browser.console if "Error" in line]
            assert errors == [], errors
            await agent.stop(announce=False)

    asyncio.run(scenario())


def test_the_monitor_asks_for_the_token(temporal_settings: Any, tmp_path: Path) -> None:
    async def scenario() -> None:
        assert CHROMIUM is not None
        async with harness(temporal_settings, tmp_path, run_worker=False) as h, Browser(CHROMIUM) as browser:
            await browser.goto(f"{h.url}/monitor/")
            await browser.wait_for("document.querySelector('#login').open === true")
            await browser.evaluate(
                f"document.querySelector('#token-input').value = '{API_TOKEN}';"
                "document.querySelector('#login form').requestSubmit(); true"
            )
            await browser.wait_for("document.body.dataset.ready === 'true'")
            await browser.wait_for("document.querySelectorAll('#flow-list li').length > 3")

    asyncio.run(scenario())


def test_the_monitor_links_only_to_web_addresses(temporal_settings: Any, tmp_path: Path) -> None:
    """A recording URL is stored as Telnyx (or anyone who got a webhook in) sent it; the page
    makes a link of http: and https: only, and runs under its Content-Security-Policy."""

    async def scenario() -> None:
        assert CHROMIUM is not None
        async with harness(temporal_settings, tmp_path, run_worker=False) as h, Browser(CHROMIUM) as browser:
            records = h.ctx.records
            urls = {
                "evil": "javascript:document.body.dataset.owned='yes'",
                "data": "data:text/html,<script>alert(1)</script>",
                "good": "https://recordings.example/call.mp3",
            }
            for name, url in urls.items():
                await records.ring(
                    name,
                    telnyx_call_id=name,
                    caller="+1555",
                    called="+1556",
                    flow_id="hold",
                    flow_version=None,
                    status="completed",
                )
                await records.note_telnyx_ids(name, recording_url=url)
            async with h.http.get(f"{h.url}/monitor/") as response:
                policy = response.headers["Content-Security-Policy"]
                assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
                assert response.headers["X-Frame-Options"] == "DENY"
            await browser.goto(f"{h.url}/monitor/#token={API_TOKEN}")
            await browser.wait_for("document.body.dataset.ready === 'true'")
            await browser.wait_for("document.querySelectorAll('#history tbody tr').length === 3")
            hrefs = await browser.evaluate(
                "[...document.querySelectorAll('#history a')].map(a => a.href).filter(h => !h.endsWith('#'))"
            )
            assert hrefs == [urls["good"]]
            for name in urls:
                await browser.evaluate(f"selectCall('{name}').then(() => true)")
                await browser.wait_for("document.querySelector('#call-facts') !== null")
            facts = await browser.evaluate("[...document.querySelectorAll('#call-facts a')].map(a => a.href)")
            assert facts == [urls["good"]]
            assert await browser.evaluate("document.body.dataset.owned || 'no'") == "no"
            errors = [
                line for line in browser.console if "Error" in line or "Content Security Policy" in line
            ]
            assert errors == [], errors

    asyncio.run(scenario())
