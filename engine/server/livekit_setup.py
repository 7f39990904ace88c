"""``voxflow livekit setup``: the SIP inbound trunk and dispatch rule LiveKit needs, idempotently.

What a call needs on the LiveKit side: Telnyx's TeXML dials
``sip:call-<id>@LIVEKIT_SIP_HOST``; LiveKit SIP accepts it on an inbound trunk,
and a *callee* dispatch rule puts the caller in a room named after the dialled
user, ``call-<id>`` (the call's workflow id), and dispatches the agent named
``voxflow`` to it.

Why the rule's room prefix is empty by default: LiveKit names a callee rule's
room after the dialled user, ``call-<id>``, when the prefix is empty, and
``<prefix>_<dialled user>`` (an underscore between) otherwise, so a ``call-``
prefix makes ``call-_call-<id>``. The agent and the server read the call id
after the ``call-`` that the dialled user starts with either way
(engine.agent.rooms.call_id_from_room).

LiveKit refuses an inbound trunk that would take calls from anyone: it needs
allowed addresses, numbers or a username and password. The trunk accepts any
dialled user (the users are call ids, not phone numbers), so restrict who may
call it: ``--allowed-address`` (Telnyx's SIP signalling addresses) and/or a
username and password that the TeXML ``<Sip>`` sends (VOXFLOW_SIP_USERNAME /
VOXFLOW_SIP_PASSWORD). With none of them, setup stops before asking LiveKit.

Run it as often as you like: it finds its trunk and rule by name, creates
what is missing, replaces what differs, and leaves the rest alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp
from livekit.api.sip_service import SipService
from livekit.api.twirp_client import ServerError
from livekit.protocol import agent_dispatch as lk_dispatch
from livekit.protocol import room as lk_room
from livekit.protocol import sip as lk_sip

from engine.core.errors import VoxflowError

TRUNK_NAME = "voxflow-inbound"
RULE_NAME = "voxflow-calls"
AGENT_NAME = "voxflow"


@dataclass(frozen=True)
class LiveKitSetup:
    url: str
    api_key: str
    api_secret: str
    trunk_name: str = TRUNK_NAME
    rule_name: str = RULE_NAME
    agent_name: str = AGENT_NAME
    room_prefix: str = ""
    allowed_addresses: tuple[str, ...] = ()
    auth_username: str = ""
    auth_password: str = ""
    numbers: tuple[str, ...] = ()


@dataclass
class SetupReport:
    trunk_id: str = ""
    rule_id: str = ""
    actions: list[str] = field(default_factory=list)


def desired_trunk(setup: LiveKitSetup) -> lk_sip.SIPInboundTrunkInfo:
    return lk_sip.SIPInboundTrunkInfo(
        name=setup.trunk_name,
        numbers=list(setup.numbers),
        allowed_addresses=list(setup.allowed_addresses),
        auth_username=setup.auth_username,
        auth_password=setup.auth_password,
        metadata="managed by voxflow livekit setup",
    )


def desired_rule(setup: LiveKitSetup, trunk_id: str) -> lk_sip.SIPDispatchRuleInfo:
    return lk_sip.SIPDispatchRuleInfo(
        name=setup.rule_name,
        trunk_ids=[trunk_id],
        rule=lk_sip.SIPDispatchRule(
            dispatch_rule_callee=lk_sip.SIPDispatchRuleCallee(room_prefix=setup.room_prefix, randomize=False)
        ),
        room_config=lk_room.RoomConfiguration(
            agents=[lk_dispatch.RoomAgentDispatch(agent_name=setup.agent_name)]
        ),
        metadata="managed by voxflow livekit setup",
    )


def _same_trunk(have: lk_sip.SIPInboundTrunkInfo, want: lk_sip.SIPInboundTrunkInfo) -> bool:
    return (
        list(have.numbers) == list(want.numbers)
        and list(have.allowed_addresses) == list(want.allowed_addresses)
        and have.auth_username == want.auth_username
        # LiveKit does not always return the password; a set one is compared when shown.
        and (not have.auth_password or have.auth_password == want.auth_password)
    )


def _same_rule(have: lk_sip.SIPDispatchRuleInfo, want: lk_sip.SIPDispatchRuleInfo) -> bool:
    agents = [a.agent_name for a in have.room_config.agents]
    return (
        have.rule.WhichOneof("rule") == "dispatch_rule_callee"
        and have.rule.dispatch_rule_callee.room_prefix == want.rule.dispatch_rule_callee.room_prefix
        and not have.rule.dispatch_rule_callee.randomize
        and list(have.trunk_ids) == list(want.trunk_ids)
        and agents == [a.agent_name for a in want.room_config.agents]
    )


TRUNK_NEEDS = (
    "LiveKit accepts an inbound SIP trunk only when it says who may call it: give "
    "--allowed-address with Telnyx's SIP signalling addresses (repeat it; an address "
    "or a CIDR range), or set "
    "VOXFLOW_SIP_USERNAME and VOXFLOW_SIP_PASSWORD (the credentials the TeXML <Sip> sends), "
    "or give --number for each dialled user to accept."
)


def check_setup(setup: LiveKitSetup) -> None:
    """What LiveKit would refuse, said before asking it."""
    if bool(setup.auth_username) != bool(setup.auth_password):
        missing = "VOXFLOW_SIP_PASSWORD" if setup.auth_username else "VOXFLOW_SIP_USERNAME"
        raise VoxflowError(f"set {missing} too: LiveKit checks a SIP username and password together.")
    if not (setup.allowed_addresses or setup.numbers or setup.auth_username):
        raise VoxflowError(TRUNK_NEEDS)


def _refusal(setup: LiveKitSetup, error: ServerError) -> VoxflowError:
    said = f"LiveKit at {setup.url} refused: {error.message or error.code} ({error.status})."
    if error.status in (401, 403) or error.code in ("unauthenticated", "permission_denied"):
        return VoxflowError(
            f"{said} Check LIVEKIT_API_KEY and LIVEKIT_API_SECRET: they must "
            "be a key and secret of that LiveKit server."
        )
    if error.status == 404 or error.code in ("bad_route", "not_found"):
        return VoxflowError(
            f"{said} Check LIVEKIT_URL: it must be the LiveKit server itself "
            "(https://… or wss://…), with no path."
        )
    if error.code == "invalid_argument" or error.status == 400:
        return VoxflowError(f"{said} Change the setup flags it names.")
    return VoxflowError(
        f"{said} LiveKit SIP needs a LiveKit server with Redis configured; check the server's log."
    )


async def set_up_livekit(setup: LiveKitSetup) -> SetupReport:
    check_setup(setup)
    report = SetupReport()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        sip = SipService(session, setup.url, setup.api_key, setup.api_secret, failover=False)
        try:
            trunk_id = await _ensure_trunk(sip, setup, report)
            await _ensure_rule(sip, setup, trunk_id, report)
        except ServerError as error:
            raise _refusal(setup, error) from None
        except aiohttp.ClientError as error:
            raise VoxflowError(f"cannot reach LiveKit at {setup.url}: {error}. Check LIVEKIT_URL.") from None
    return report


async def _ensure_trunk(sip: SipService, setup: LiveKitSetup, report: SetupReport) -> str:
    want = desired_trunk(setup)
    existing = await sip.list_inbound_trunk(lk_sip.ListSIPInboundTrunkRequest())
    mine = [t for t in existing.items if t.name == setup.trunk_name]
    if not mine:
        created = await sip.create_inbound_trunk(lk_sip.CreateSIPInboundTrunkRequest(trunk=want))
        report.actions.append(f"created the inbound trunk '{setup.trunk_name}' ({created.sip_trunk_id})")
        report.trunk_id = created.sip_trunk_id
        return created.sip_trunk_id
    have = mine[0]
    if _same_trunk(have, want):
        report.actions.append(
            f"the inbound trunk '{setup.trunk_name}' ({have.sip_trunk_id}) is already set up"
        )
    else:
        await sip.update_inbound_trunk(have.sip_trunk_id, want)
        report.actions.append(f"updated the inbound trunk '{setup.trunk_name}' ({have.sip_trunk_id})")
    report.trunk_id = have.sip_trunk_id
    return have.sip_trunk_id


async def _ensure_rule(sip: SipService, setup: LiveKitSetup, trunk_id: str, report: SetupReport) -> None:
    want = desired_rule(setup, trunk_id)
    existing = await sip.list_dispatch_rule(lk_sip.ListSIPDispatchRuleRequest())
    mine = [r for r in existing.items if r.name == setup.rule_name]
    if not mine:
        created = await sip.create_dispatch_rule(lk_sip.CreateSIPDispatchRuleRequest(dispatch_rule=want))
        report.actions.append(
            f"created the dispatch rule '{setup.rule_name}' "
            f"({created.sip_dispatch_rule_id}): rooms named after the dialled "
            f"user, agent '{setup.agent_name}'"
        )
        report.rule_id = created.sip_dispatch_rule_id
        return
    have = mine[0]
    report.rule_id = have.sip_dispatch_rule_id
    if _same_rule(have, want):
        report.actions.append(
            f"the dispatch rule '{setup.rule_name}' ({have.sip_dispatch_rule_id}) is already set up"
        )
    else:
        await sip.update_dispatch_rule(have.sip_dispatch_rule_id, want)
        report.actions.append(f"updated the dispatch rule '{setup.rule_name}' ({have.sip_dispatch_rule_id})")


def setup_from_env(env: dict[str, str], **overrides: object) -> LiveKitSetup:
    missing = [
        n for n in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET") if not env.get(n, "").strip()
    ]
    if missing:
        raise VoxflowError(
            f"set {', '.join(missing)}: the LiveKit server (https://… or "
            "wss://…) and an API key and secret from its configuration or "
            "LiveKit Cloud's project settings."
        )
    fields: dict[str, object] = {
        "url": env["LIVEKIT_URL"].strip(),
        "api_key": env["LIVEKIT_API_KEY"].strip(),
        "api_secret": env["LIVEKIT_API_SECRET"].strip(),
        "auth_username": env.get("VOXFLOW_SIP_USERNAME", "").strip(),
        "auth_password": env.get("VOXFLOW_SIP_PASSWORD", "").strip(),
    }
    fields.update({k: v for k, v in overrides.items() if v is not None})
    return LiveKitSetup(**fields)  # type: ignore[arg-type]


def as_tuple(values: Sequence[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(values)
