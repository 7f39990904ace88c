"""Number → trigger → flow, business hours, and numbers nobody configured."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from engine.core.errors import VoxflowError
from engine.runtime.messages import workflow_id
from engine.server.flow_library import FlowLibrary
from engine.server.routing import UnknownNumberPolicy, normalise_number, route_call
from engine.server.settings import ServerSettings, unknown_policy
from engine.server.telnyx import call_id_for
from tests.server.support import FLOWS, call_event, harness, telnyx_call_id, texml_form

NOW = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def library() -> FlowLibrary:
    library = FlowLibrary(FLOWS)
    library.reload()
    return library


def test_numbers_are_normalised() -> None:
    assert normalise_number("+15550001000") == "+15550001000"
    assert normalise_number("15550001000") == "+15550001000"
    assert normalise_number("+1 (555) 000-1000") == "+15550001000"
    assert normalise_number("sip:+15550001000@sip.telnyx.com;user=phone") == "+15550001000"


def test_a_trigger_runs_its_flow(library: FlowLibrary) -> None:
    decision = route_call(library, "+15550001000", "+1999", NOW, UnknownNumberPolicy())
    assert decision.action == "run" and decision.flow is not None
    assert decision.flow.flow_id == "greeting" and decision.language == "en-US"


def test_outside_business_hours(library: FlowLibrary) -> None:
    message = route_call(library, "+15550003000", "+15557654321", NOW, UnknownNumberPolicy())
    assert message.action == "message"
    assert message.message == "We are closed, +15557654321."
    voicemail = route_call(library, "+15550004000", "+1", NOW, UnknownNumberPolicy())
    assert voicemail.action == "run" and voicemail.flow is not None
    assert voicemail.flow.flow_id == "voicemail"
    reject = route_call(library, "+15550005000", "+1", NOW, UnknownNumberPolicy())
    assert reject.action == "reject" and "outside business hours" in reject.reason


def test_unknown_numbers_get_the_configured_behaviour(library: FlowLibrary) -> None:
    number = "+15559999999"
    assert route_call(library, number, "+1", NOW, UnknownNumberPolicy()).action == "reject"
    said = route_call(library, number, "+1", NOW, UnknownNumberPolicy("message", "Wrong number."))
    assert said.action == "message" and said.message == "Wrong number."
    flow = route_call(library, number, "+1", NOW, UnknownNumberPolicy("flow", flow="voicemail"))
    assert flow.action == "run" and flow.flow is not None and flow.flow.flow_id == "voicemail"
    missing = route_call(library, number, "+1", NOW, UnknownNumberPolicy("flow", flow="nope"))
    assert missing.action == "message"


def test_the_unknown_number_setting_is_checked() -> None:
    assert unknown_policy(None, None).action == "reject"
    assert unknown_policy("flow:voicemail", None).flow == "voicemail"
    assert unknown_policy("message", "Hi").message == "Hi"
    with pytest.raises(VoxflowError, match="VOXFLOW_UNKNOWN_NUMBER"):
        unknown_policy("voicemail", None)


def test_texml_answers_for_each_behaviour(temporal_settings: Any, tmp_path: Path) -> None:
    async def scenario() -> None:
        settings = ServerSettings(unknown=UnknownNumberPolicy("message", "Not in service."))
        async with harness(temporal_settings, tmp_path, settings=settings) as h:
            closed = telnyx_call_id()
            status, xml = await h.texml(texml_form(closed, called="+15550003000"))
            assert status == 200
            assert "<Say>We are closed, +15557654321.</Say><Hangup/>" in xml
            record = await h.ctx.records.get_call(call_id_for(closed))
            assert record["status"] == "completed" and "outside business hours" in record["reason"]

            status, xml = await h.texml(texml_form(telnyx_call_id(), called="+15550005000"))
            assert '<Reject reason="rejected"/>' in xml

            unknown = telnyx_call_id()
            status, xml = await h.texml(texml_form(unknown, called="+15559999999"))
            assert "<Say>Not in service.</Say>" in xml
            assert (await h.ctx.records.get_call(call_id_for(unknown)))["status"] == "completed"

            voicemail = telnyx_call_id()
            status, xml = await h.texml(texml_form(voicemail, called="+15550004000"))
            assert "<Dial><Sip>" in xml
            record = await h.wait_for_call(call_id_for(voicemail), "completed")
            assert record["flow_id"] == "voicemail" and record["node_path"] == ["closed", "done"]
            assert record["reason"] == "voicemail taken"

    asyncio.run(scenario())


def test_a_caller_who_hangs_up_before_the_flow_starts(temporal_settings: Any, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with harness(temporal_settings, tmp_path, run_worker=False) as h:
            # Rings (the TeXML fetch), but its workflow is gone before the caller hangs up
            # (terminated here); Telnyx then reports the hangup.
            telnyx_id = telnyx_call_id()
            status, _ = await h.texml(texml_form(telnyx_id, called="+15550002000"))
            assert status == 200
            client = h.ctx.temporal_client()
            await client.get_workflow_handle(workflow_id(call_id_for(telnyx_id))).terminate()
            response = await h.post_event(call_event("call.hangup", telnyx_id, called="+15550002000"))
            assert response.status == 200
            record = await h.ctx.records.get_call(call_id_for(telnyx_id))
            assert record["status"] == "user_hangup"

    asyncio.run(scenario())
