"""``voxflow livekit setup`` against the real LiveKit server of the test bed.

The trunk and dispatch rule go through LiveKit's own Twirp SIP API and
validation (kept in the test bed's Redis); read back, they are what a call
needs. Without any restriction on who may call, setup stops before asking
LiveKit and says what LiveKit needs.
"""

from __future__ import annotations

import asyncio
import uuid

import aiohttp
import pytest
from livekit.api.sip_service import SipService
from livekit.protocol import sip as lk_sip

from engine.agent.rooms import call_id_from_room
from engine.cli.main import main
from engine.server.livekit_setup import LiveKitSetup, set_up_livekit
from engine.testbed.livekit_server import LiveKitEndpoints


async def _rules_and_trunks(
    lk: LiveKitEndpoints,
) -> tuple[list[lk_sip.SIPDispatchRuleInfo], list[lk_sip.SIPInboundTrunkInfo]]:
    async with aiohttp.ClientSession() as session:
        sip = SipService(session, lk.http_url, lk.api_key, lk.api_secret)
        rules = await sip.list_dispatch_rule(lk_sip.ListSIPDispatchRuleRequest())
        trunks = await sip.list_inbound_trunk(lk_sip.ListSIPInboundTrunkRequest())
        return list(rules.items), list(trunks.items)


def _env(monkeypatch: pytest.MonkeyPatch, lk: LiveKitEndpoints) -> None:
    for name, value in lk.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("VOXFLOW_SIP_USERNAME", raising=False)
    monkeypatch.delenv("VOXFLOW_SIP_PASSWORD", raising=False)


def test_setup_with_and_without_a_room_prefix(
    real_livekit: LiveKitEndpoints, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _env(monkeypatch, real_livekit)
    trunk, rule = f"trunk-{uuid.uuid4().hex[:6]}", f"rule-{uuid.uuid4().hex[:6]}"
    names = ["--trunk-name", trunk, "--rule-name", rule]
    assert main(["livekit", "setup", "--allowed-address", "127.0.0.1", *names]) == 0
    assert "created the inbound trunk" in capsys.readouterr().out
    rules, trunks = asyncio.run(_rules_and_trunks(real_livekit))
    [mine] = [r for r in rules if r.name == rule]
    [its_trunk] = [t for t in trunks if t.name == trunk]
    assert list(its_trunk.allowed_addresses) == ["127.0.0.1"]
    assert list(mine.trunk_ids) == [its_trunk.sip_trunk_id]
    assert mine.rule.dispatch_rule_callee.room_prefix == ""
    assert [a.agent_name for a in mine.room_config.agents] == ["voxflow"]
    # Again: nothing to change.
    assert main(["livekit", "setup", "--allowed-address", "127.0.0.1", *names]) == 0
    assert "already set up" in capsys.readouterr().out

    assert main(["livekit", "setup", "--allowed-address", "127.0.0.1", "--room-prefix", "call-", *names]) == 0
    assert "updated the dispatch rule" in capsys.readouterr().out
    rules, _ = asyncio.run(_rules_and_trunks(real_livekit))
    [mine] = [r for r in rules if r.name == rule]
    assert mine.rule.dispatch_rule_callee.room_prefix == "call-"
    # LiveKit then names the room of a call to call-4f2a... "call-_call-4f2a...";
    # without a prefix, "call-4f2a...": both are that call.
    assert call_id_from_room("call-_call-4f2a") == "4f2a"
    assert call_id_from_room("call-4f2a") == "4f2a"
    assert call_id_from_room("acme_call-4f2a") == "4f2a"
    assert call_id_from_room("lobby") is None


def test_setup_without_restrictions_says_what_livekit_needs(
    real_livekit: LiveKitEndpoints, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _env(monkeypatch, real_livekit)
    name = f"open-{uuid.uuid4().hex[:6]}"
    assert main(["livekit", "setup", "--trunk-name", name]) == 1
    error = capsys.readouterr().err
    assert "--allowed-address" in error and "VOXFLOW_SIP_USERNAME" in error
    assert "LIVEKIT_URL" not in error and "LIVEKIT_API_KEY" not in error
    _, trunks = asyncio.run(_rules_and_trunks(real_livekit))
    assert name not in [t.name for t in trunks]
    # The check is LiveKit's own: asked anyway, the real server refuses such a trunk, and
    # voxflow does not blame the URL or the keys for it.
    from engine.server import livekit_setup

    setup = LiveKitSetup(
        url=real_livekit.http_url,
        api_key=real_livekit.api_key,
        api_secret=real_livekit.api_secret,
        trunk_name=name,
    )
    monkeypatch.setattr(livekit_setup, "check_setup", lambda _setup: None)
    with pytest.raises(Exception) as refused:
        asyncio.run(set_up_livekit(setup))
    assert "one of the fields must be set" in str(refused.value)
    assert "LIVEKIT_API_KEY" not in str(refused.value)


def test_wrong_secret_is_blamed_on_the_keys(
    real_livekit: LiveKitEndpoints, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _env(monkeypatch, real_livekit)
    monkeypatch.setenv("LIVEKIT_API_SECRET", "not-the-secret-" * 3)
    assert main(["livekit", "setup", "--allowed-address", "127.0.0.1"]) == 1
    error = capsys.readouterr().err
    assert "LIVEKIT_API_KEY and LIVEKIT_API_SECRET" in error
