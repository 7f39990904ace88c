"""Calls through Twilio: voice requests and status callbacks, signed as Twilio signs them.

The requests carry Twilio's documented parameters (CallSid, AccountSid, From,
To, CallStatus, Direction, ApiVersion, Called/Caller and the geographic ones;
status callbacks add CallDuration, Timestamp, CallbackSource and
SequenceNumber) and an ``X-Twilio-Signature`` made by the ``twilio`` SDK's
RequestValidator over the public URL Twilio was given (the server runs
behind a "proxy": it is reached on a local port, VOXFLOW_PUBLIC_URL says
the public address). Forged, stale and replayed requests are refused.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

from twilio.request_validator import RequestValidator

from engine.runtime.messages import workflow_id
from engine.server.settings import ServerSettings
from engine.server.telnyx import call_id_for
from tests.server.support import (
    API_TOKEN,
    INTERNAL_TOKEN,
    SIP_HOST,
    copy_flows,
    harness,
    texml_form,
)

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "0123456789abcdef0123456789abcdef"
PUBLIC = "https://voice.example.com"


def call_sid() -> str:
    return "CA" + uuid.uuid4().hex


def voice_params(
    sid: str,
    *,
    caller: str = "+15557654321",
    called: str = "+15550002000",
    status: str = "ringing",
    **extra: str,
) -> dict[str, str]:
    return {
        "CallSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": caller,
        "To": called,
        "CallStatus": status,
        "ApiVersion": "2010-04-01",
        "Direction": "inbound",
        "Caller": caller,
        "Called": called,
        "CallerCity": "SAN FRANCISCO",
        "CallerState": "CA",
        "CallerZip": "94103",
        "CallerCountry": "US",
        "FromCity": "SAN FRANCISCO",
        "FromState": "CA",
        "FromZip": "94103",
        "FromCountry": "US",
        "ToCity": "",
        "ToState": "NY",
        "ToZip": "",
        "ToCountry": "US",
        **extra,
    }


def status_params(
    sid: str, status: str = "completed", sent: float | None = None, **extra: str
) -> dict[str, str]:
    return voice_params(
        sid,
        status=status,
        CallDuration="12",
        CallbackSource="call-progress-events",
        SequenceNumber="0",
        Timestamp=email.utils.formatdate(sent or time.time(), usegmt=True),
        **extra,
    )


def sign(params: dict[str, str], path: str, token: str = AUTH_TOKEN) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(PUBLIC + path, params)}


async def post(h: Any, path: str, params: dict[str, str], headers: dict[str, str]) -> tuple[int, str]:
    body = urllib.parse.urlencode(params)
    async with h.http.post(
        f"{h.url}{path}",
        data=body,
        headers={
            **headers,
            "Content-Type": "application/x-www-form-urlencoded",
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
        },
    ) as response:
        return response.status, await response.text()


def twilio_settings() -> ServerSettings:
    return ServerSettings(
        sip_host=SIP_HOST,
        api_token=API_TOKEN,
        internal_token=INTERNAL_TOKEN,
        public_url=PUBLIC,
        twilio_auth_token=AUTH_TOKEN,
        twilio_account_sid=ACCOUNT_SID,
    )


def test_a_twilio_call_and_every_refusal(temporal_settings: Any, tmp_path: Path) -> None:
    flows = copy_flows(tmp_path / "flows")
    (flows / "triggers" / "telnyx-only.yaml").write_text(
        'number: "+15550007000"\nflow: hold\ncarrier: telnyx\n', encoding="utf-8"
    )
    (flows / "triggers" / "twilio-only.yaml").write_text(
        'number: "+15550008000"\nflow: hold\ncarrier: twilio\n', encoding="utf-8"
    )

    async def scenario() -> None:
        voice, status_path = "/webhooks/twilio/voice", "/webhooks/twilio/status"
        async with harness(temporal_settings, tmp_path, flows=flows, settings=twilio_settings()) as h:
            sid = call_sid()
            call_id = call_id_for(sid)
            params = voice_params(sid)
            headers = sign(params, voice)
            status, xml = await post(h, voice, params, headers)
            assert status == 200, xml
            assert f"<Response><Dial><Sip>sip:call-{call_id}@{SIP_HOST}</Sip></Dial></Response>" in xml
            record = await h.wait_for_call(call_id, ("ringing", "active"))
            assert record["flow_id"] == "hold" and record["telnyx_call_id"] == sid
            assert record["caller"] == "+15557654321" and record["called"] == "+15550002000"

            # The same signed request again: a replay.
            assert (await post(h, voice, params, headers))[0] == 409
            # Forged: another account's token, a changed parameter, no signature at all.
            assert (await post(h, voice, params, sign(params, voice, "f" * 32)))[0] == 401
            changed = {**params, "From": "+15550000000"}
            assert (await post(h, voice, changed, headers))[0] == 401
            assert (await post(h, voice, params, {}))[0] == 401
            # Signed for another path of the same server.
            assert (await post(h, voice, params, sign(params, "/webhooks/telnyx/texml")))[0] == 401
            # For another Twilio account (signed with our token, as a leaked token would be).
            other = voice_params(call_sid(), AccountSid="AC" + "1" * 32)
            assert (await post(h, voice, other, sign(other, voice)))[0] == 403

            # A status callback sent ten minutes ago: stale, even with a good signature.
            stale = status_params(sid, sent=time.time() - 600)
            assert (await post(h, status_path, stale, sign(stale, status_path)))[0] == 401
            assert (await h.ctx.records.get_call(call_id))["status"] in ("ringing", "active")

            # The caller hangs up (once the flow waits in its node): Twilio's status callback
            # ends the call.
            await h.wait_at_node(call_id, "approval")
            ended = status_params(sid)
            ended_headers = sign(ended, status_path)
            status, xml = await post(h, status_path, ended, ended_headers)
            assert status == 200 and "<Response/>" in xml
            record = await h.wait_for_call(call_id, "user_hangup")
            assert "completed" in record["reason"]
            assert (await post(h, status_path, ended, ended_headers))[0] == 409  # replayed

            # A voice request for that call, signed anew (another parameter), long after:
            # the call is over, so it is rejected and nothing starts again.
            late = voice_params(sid, CallToken="late")
            status, xml = await post(h, voice, late, sign(late, voice))
            assert status == 200 and "<Reject" in xml
            assert (await h.ctx.records.get_call(call_id))["status"] == "user_hangup"

            # A trigger that names its carrier takes only that carrier's calls.
            telnyx_only = voice_params(call_sid(), called="+15550007000")
            status, xml = await post(h, voice, telnyx_only, sign(telnyx_only, voice))
            assert status == 200 and "<Reject" in xml
            rejected = await h.ctx.records.get_call(call_id_for(telnyx_only["CallSid"]))
            assert "takes calls through telnyx" in rejected["reason"]
            twilio_only = voice_params(call_sid(), called="+15550008000")
            status, xml = await post(h, voice, twilio_only, sign(twilio_only, voice))
            assert status == 200 and "<Dial><Sip>" in xml
            telnyx_sid = "v3:" + uuid.uuid4().hex
            status, xml = await h.texml(texml_form(telnyx_sid, called="+15550008000"))
            assert status == 200 and "<Reject" in xml
            status, xml = await h.texml(texml_form("v3:" + uuid.uuid4().hex, called="+15550007000"))
            assert status == 200 and "<Dial><Sip>" in xml

            # The server saw the refusals, under the same metric as Telnyx's.
            metrics = await h.api("/metrics")
            for reason in ("forged", "stale", "replayed", "unsigned", "other_account"):
                assert f'reason="webhook_{reason}"' in metrics or f"webhook_{reason}" in metrics

            client = h.ctx.temporal_client()
            for running in (call_id_for(twilio_only["CallSid"]),):
                await client.get_workflow_handle(workflow_id(running)).signal("release")
                await h.wait_for_call(running, "completed")

    asyncio.run(scenario())


def test_twilio_webhooks_are_refused_without_the_auth_token(temporal_settings: Any, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with harness(temporal_settings, tmp_path, run_worker=False) as h:
            params = voice_params(call_sid())
            status, text = await post(
                h, "/webhooks/twilio/voice", params, sign(params, "/webhooks/twilio/voice")
            )
            assert status == 503 and "TWILIO_AUTH_TOKEN" in text

    asyncio.run(scenario())
