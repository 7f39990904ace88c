"""Calling a flow from the monitor page of a real ``voxflow dev``, in headless Chromium.

Chromium's fake media flags play an espeak-ng recording as the microphone: the
caller says "balance" (the file loops, with silence around the word). The page
sends it over its authenticated WebSocket, the dev server's agent hears it with
Silero VAD and pocketsphinx, the workflow takes the menu's balance branch, and
the agent's espeak-ng voice comes back to the page, which plays it. A screenshot
of the live call is kept (``voxflow-browser-call.png`` in the temp folder, or
VOXFLOW_SCREENSHOT_DIR).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.agent import wav
from tests.agent.speech import silence, speech
from tests.dev.dev_server import CALL_SECONDS, DevServer, start_dev, stop_dev
from tests.server.browser import Browser, find_chromium

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="chromium is not installed (apt-get install -y chromium)",
)


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    server = start_dev(tmp_path_factory.mktemp("dev"))
    try:
        yield server
    finally:
        stop_dev(server)


@pytest.fixture(scope="module")
def microphone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the fake microphone plays, over and over: a pause, "balance", a pause."""
    samples = np.concatenate([silence(3.0), speech("balance"), silence(3.5)])
    path = tmp_path_factory.mktemp("mic") / "balance.wav"
    wav.write(path, samples, 16000)
    return path


def _browser(microphone: Path) -> Browser:
    assert CHROMIUM is not None, "chromium is needed (the CI installs it)"
    return Browser(
        CHROMIUM,
        flags=(
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={microphone}",
            "--autoplay-policy=no-user-gesture-required",
        ),
    )


async def _open_monitor(browser: Browser, dev: DevServer) -> None:
    await browser.goto(f"{dev.url}/monitor/#token={dev.token}")
    await browser.wait_for("document.body.dataset.ready === 'true'", timeout=30)
    await browser.wait_for("document.body.dataset.callerLive === 'false'")
    await browser.evaluate("document.getElementById('caller-target').value = 'flow:bank-line'")


async def _wait_for_end(browser: Browser) -> str:
    status: str = await browser.wait_for(
        "document.body.dataset.callerLive === 'false' && "
        "document.getElementById('caller-status').textContent.startsWith('Call ended') && "
        "document.getElementById('caller-status').textContent",
        timeout=CALL_SECONDS,
    )
    return status


async def _call_record(browser: Browser, call_id: str) -> dict[str, Any]:
    record: dict[str, Any] = await browser.evaluate(f"api('/api/calls/{call_id}')")
    return record


def _keep(screenshot: Path) -> None:
    folder = Path(os.environ.get("VOXFLOW_SCREENSHOT_DIR") or tempfile.gettempdir())
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(screenshot, folder / screenshot.name)


def test_a_spoken_answer_takes_the_balance_branch_and_the_page_hears_the_agent(
    dev: DevServer, microphone: Path, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with _browser(microphone) as browser:
            await _open_monitor(browser, dev)
            # Whether the transcript ever shows the caller speaking before the words are final.
            await browser.evaluate(
                "window.sawInterim = false; new MutationObserver(() => { if (document"
                ".querySelector('#transcript li.interim')) window.sawInterim = true; })"
                ".observe(document.getElementById('transcript'), {childList: true, subtree: true})"
            )
            await browser.evaluate("document.getElementById('call-voice').click()")
            call_id = await browser.wait_for("window.voxflowCaller.callId", timeout=30)
            # The page lights the call's current node on the diagram while it is live.
            await browser.wait_for("document.querySelector('#diagram .node.current') !== null", timeout=30)
            await browser.wait_for("window.voxflowCaller.stats.played > 16000", timeout=30)
            shot = await browser.screenshot(tmp_path / "voxflow-browser-call.png")
            _keep(shot)
            ended = await _wait_for_end(browser)
            assert "completed" in ended, ended
            stats = await browser.evaluate("window.voxflowCaller.stats")
            assert stats["sent"] > 16000, stats  # the microphone reached the server
            assert stats["peak"] > 0.05, stats  # the agent's voice, not silence
            assert stats["played"] > 3 * 16000, stats  # seconds of it played out
            record = await _call_record(browser, call_id)
            assert record["status"] == "completed", record
            assert "balance" in record["node_path"], record["node_path"]
            spoken = [t["text"] for t in record["transcript"] if t["speaker"] == "caller"]
            assert any("balance" in text for text in spoken), record["transcript"]
            assert await browser.evaluate("window.sawInterim"), "the caller was never shown speaking"
            assert record["transcript"][0]["text"] == "Welcome to the test bank."
            # Both sides of the call are kept as its recording, a link on the monitor.
            url = await browser.wait_for(
                f"api('/api/calls/{call_id}').then(r => r.recording_url)", timeout=15
            )
            size = await browser.evaluate(
                f"fetch('{url}', {{headers: {{Authorization: 'Bearer ' + state.token}}}})"
                ".then(r => r.arrayBuffer()).then(b => b.byteLength)"
            )
            assert size > 5 * 32000, size
            # The history shows the call with its end reason.
            await browser.wait_for(
                f"document.querySelector('#history tr[data-call=\"{call_id}\"] td.reason')"
                ".textContent.includes('hung up')",
                timeout=15,
            )

    asyncio.run(scenario())


def test_keypad_and_typed_words_choose_menu_options(dev: DevServer, microphone: Path) -> None:
    async def scenario() -> None:
        async with _browser(microphone) as browser:
            await _open_monitor(browser, dev)
            # A typed call: press 2 on the keypad when the menu asks.
            await browser.evaluate("document.getElementById('call-text').click()")
            call_id = await browser.wait_for("window.voxflowCaller.callId", timeout=30)
            await browser.wait_for(f"state.calls.get('{call_id}')?.current_node === 'menu'", timeout=30)
            await browser.evaluate("document.querySelector('#keypad [data-digit=\"2\"]').click()")
            assert "completed" in await _wait_for_end(browser)
            record = await _call_record(browser, call_id)
            assert "agent" in record["node_path"] and "balance" not in record["node_path"]
            assert any(t["kind"] == "dtmf" and t["text"] == "2" for t in record["transcript"])

            # The author edits the flow: the page says it reloaded, and the next call
            # runs the new version.
            flow = dev.flows / "bank-line.yaml"
            flow.write_text(flow.read_text().replace("forty two dollars", "seven dollars"))
            await browser.wait_for(
                "!document.getElementById('notice').hidden && "
                "document.getElementById('notice').textContent"
                ".includes('bank-line')",
                timeout=30,
            )

            # A typed call: the words go in where speech would.
            await browser.evaluate("document.getElementById('call-text').click()")
            await browser.wait_for(
                f"window.voxflowCaller.callId && window.voxflowCaller.callId !== '{call_id}'", timeout=30
            )
            second = await browser.evaluate("window.voxflowCaller.callId")
            await browser.wait_for(f"state.calls.get('{second}')?.current_node === 'menu'", timeout=30)
            await browser.evaluate(
                "document.getElementById('typed').value = 'my balance';"
                "document.getElementById('typed-send').click()"
            )
            assert "completed" in await _wait_for_end(browser)
            record = await _call_record(browser, second)
            assert "balance" in record["node_path"], record["node_path"]
            assert any(
                t["speaker"] == "caller" and t["text"] == "my balance" for t in record["transcript"]
            ), record["transcript"]
            assert any(t["text"] == "Your balance is seven dollars." for t in record["transcript"])

    asyncio.run(scenario())


def test_closing_the_tab_mid_call_hangs_up(dev: DevServer, microphone: Path) -> None:
    async def scenario() -> None:
        async with _browser(microphone) as browser:
            await _open_monitor(browser, dev)
            await browser.evaluate("document.getElementById('call-text').click()")
            call_id = await browser.wait_for("window.voxflowCaller.callId", timeout=30)
            await browser.wait_for(f"state.calls.get('{call_id}')?.current_node === 'menu'", timeout=30)
        # The browser is gone: the call ends as the caller hanging up, its record closed.
        import aiohttp

        async with aiohttp.ClientSession() as http:
            record = await dev.ended_record(http, call_id)
        assert record["status"] == "user_hangup", record

    asyncio.run(scenario())
