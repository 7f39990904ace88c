"""``voxflow livekit setup`` against a local server speaking LiveKit's Twirp SIP API.

The real livekit-api client talks to it (protobuf over HTTP, a JWT signed with
the API secret); LiveKit Cloud cannot be reached from the tests.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from aiohttp import web

from engine.cli.main import main
from tests.server.fake_livekit import API_KEY, API_SECRET, FakeLiveKit


@pytest.fixture
def livekit(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLiveKit]:
    fake = FakeLiveKit()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, object] = {}

    async def start() -> None:
        runner = web.AppRunner(fake.app())
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        holder["runner"] = runner
        holder["port"] = runner.addresses[0][1]
        started.set()

    thread = threading.Thread(
        target=lambda: (loop.run_until_complete(start()), loop.run_forever()), daemon=True
    )
    thread.start()
    assert started.wait(10)
    monkeypatch.setenv("LIVEKIT_URL", f"http://127.0.0.1:{holder['port']}")
    monkeypatch.setenv("LIVEKIT_API_KEY", API_KEY)
    monkeypatch.setenv("LIVEKIT_API_SECRET", API_SECRET)
    yield fake
    asyncio.run_coroutine_threadsafe(holder["runner"].cleanup(), loop).result(10)  # type: ignore[attr-defined]
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def test_setup_creates_the_trunk_and_rule_once(
    livekit: FakeLiveKit, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["livekit", "setup", "--allowed-address", "192.0.2.0/24"]) == 0
    out = capsys.readouterr().out
    assert "created the inbound trunk 'voxflow-inbound'" in out
    assert "created the dispatch rule 'voxflow-calls'" in out
    [trunk] = livekit.trunks.values()
    assert list(trunk.allowed_addresses) == ["192.0.2.0/24"] and list(trunk.numbers) == []
    [rule] = livekit.rules.values()
    assert rule.rule.WhichOneof("rule") == "dispatch_rule_callee"
    assert rule.rule.dispatch_rule_callee.room_prefix == ""
    assert list(rule.trunk_ids) == [trunk.sip_trunk_id]
    assert [a.agent_name for a in rule.room_config.agents] == ["voxflow"]

    # Again: nothing new.
    assert main(["livekit", "setup", "--allowed-address", "192.0.2.0/24"]) == 0
    out = capsys.readouterr().out
    assert "is already set up" in out and "created" not in out
    assert len(livekit.trunks) == 1 and len(livekit.rules) == 1
    assert "CreateSIPInboundTrunk" not in livekit.calls[4:]

    # A change is applied to the same trunk and rule.
    assert main(["livekit", "setup", "--allowed-address", "198.51.100.7", "--agent-name", "other"]) == 0
    out = capsys.readouterr().out
    assert "updated the inbound trunk" in out and "updated the dispatch rule" in out
    assert len(livekit.trunks) == 1 and len(livekit.rules) == 1
    [trunk] = livekit.trunks.values()
    assert list(trunk.allowed_addresses) == ["198.51.100.7"]
    [rule] = livekit.rules.values()
    assert [a.agent_name for a in rule.room_config.agents] == ["other"]


def test_setup_explains_missing_or_wrong_credentials(
    livekit: FakeLiveKit, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LIVEKIT_API_SECRET", "x" * 40)
    assert main(["livekit", "setup", "--allowed-address", "192.0.2.0/24"]) == 1
    error = capsys.readouterr().err
    assert "refused" in error and "LIVEKIT_API_SECRET" in error
    monkeypatch.delenv("LIVEKIT_API_KEY")
    assert main(["livekit", "setup", "--allowed-address", "192.0.2.0/24"]) == 1
    assert "LIVEKIT_API_KEY" in capsys.readouterr().err
    assert livekit.trunks == {}
