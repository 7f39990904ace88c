"""A local server speaking Twilio's REST API (2010-04-01) wire format, for the ``twilio`` SDK.

What it answers, as Twilio documents it, under ``/2010-04-01/Accounts/{AccountSid}``:
``.json`` (the account), ``/AvailablePhoneNumbers/{Country}/Local.json``
(``AreaCode``, ``VoiceEnabled``, ``PageSize``), ``/IncomingPhoneNumbers.json``
(list with ``PhoneNumber``, paged by ``next_page_uri``; create with
``PhoneNumber``) and ``/IncomingPhoneNumbers/{Sid}.json`` (fetch, update with
``VoiceUrl``/``VoiceMethod``/``StatusCallback``/``StatusCallbackMethod``,
delete: 204). Requests are form-encoded, answers JSON with snake_case keys;
HTTP Basic authentication with the Account SID and Auth Token (401 and
Twilio's error 20003 otherwise; 403 and 20403 for an account without
permission). Every request is kept in ``requests``.
"""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "0123456789abcdef0123456789abcdef"
SUSPENDED_SID = "AC" + "fedcba9876543210" * 2  # its token works, but it may change nothing
DATE = "Tue, 01 Dec 2026 10:00:00 +0000"
API = "/2010-04-01/Accounts/{account}"


def _error(status: int, code: int, message: str) -> web.Response:
    return web.json_response(
        {
            "code": code,
            "message": message,
            "status": status,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
        },
        status=status,
    )


@dataclass
class FakeTwilio:
    inventory: dict[str, dict[str, Any]] = field(default_factory=dict)
    numbers: dict[str, dict[str, Any]] = field(default_factory=dict)  # sid → number
    requests: list[tuple[str, str]] = field(default_factory=list)
    page_size_cap: int = 2
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def offer(self, number: str, locality: str = "San Francisco", region: str = "CA") -> None:
        self.inventory[number] = {
            "friendly_name": f"({number[2:5]}) {number[5:8]}-{number[8:]}",
            "phone_number": number,
            "lata": "722",
            "locality": locality,
            "rate_center": locality.upper().replace(" ", ""),
            "latitude": "37.77",
            "longitude": "-122.41",
            "region": region,
            "postal_code": "94103",
            "iso_country": "US",
            "address_requirements": "none",
            "beta": False,
            "capabilities": {"voice": True, "SMS": True, "MMS": True, "fax": False},
        }

    def owned_by_number(self, number: str) -> dict[str, Any] | None:
        return next((n for n in self.numbers.values() if n["phone_number"] == number), None)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        r = app.router
        base = "/2010-04-01/Accounts/{account}"
        r.add_get(base + ".json", self.account)
        r.add_get(base + "/AvailablePhoneNumbers/{country}/Local.json", self.available)
        r.add_get(base + "/IncomingPhoneNumbers.json", self.list_numbers)
        r.add_post(base + "/IncomingPhoneNumbers.json", self.create_number)
        r.add_get(base + "/IncomingPhoneNumbers/{sid}.json", self.fetch_number)
        r.add_post(base + "/IncomingPhoneNumbers/{sid}.json", self.update_number)
        r.add_delete(base + "/IncomingPhoneNumbers/{sid}.json", self.delete_number)
        return app

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs))
        header = request.headers.get("Authorization", "")
        try:
            user, _, password = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
        except ValueError:
            user = password = ""
        if user not in (ACCOUNT_SID, SUSPENDED_SID) or password != AUTH_TOKEN:
            return _error(401, 20003, "Authenticate")
        if request.match_info.get("account") != user:
            return _error(404, 20404, f"The requested resource {request.path} was not found")
        if user == SUSPENDED_SID and request.method != "GET":
            return _error(403, 20403, "Forbidden. You don't have permission to access this resource.")
        return await handler(request)

    async def account(self, request: web.Request) -> web.Response:
        sid = request.match_info["account"]
        return web.json_response(
            {
                "sid": sid,
                "friendly_name": "Voxflow test account",
                "status": "active",
                "type": "Full",
                "owner_account_sid": sid,
                "date_created": DATE,
                "date_updated": DATE,
                "auth_token": AUTH_TOKEN,
                "uri": f"/2010-04-01/Accounts/{sid}.json",
                "subresource_uris": {},
            }
        )

    async def available(self, request: web.Request) -> web.Response:
        q = request.query
        area = q.get("AreaCode")
        size = int(q.get("PageSize", "50"))
        found = [
            n
            for n in self.inventory.values()
            if request.match_info["country"] == "US" and (not area or n["phone_number"][2:5] == area)
        ][:size]
        return web.json_response({"available_phone_numbers": found, "uri": request.path_qs})

    def _number_json(self, sid: str, number: str, account: str) -> dict[str, Any]:
        return {
            "sid": sid,
            "account_sid": account,
            "friendly_name": number,
            "phone_number": number,
            "status": "in-use",
            "origin": "twilio",
            "api_version": "2010-04-01",
            "voice_url": "",
            "voice_method": "POST",
            "voice_fallback_url": None,
            "voice_fallback_method": "POST",
            "status_callback": "",
            "status_callback_method": "POST",
            "voice_caller_id_lookup": False,
            "voice_application_sid": None,
            "trunk_sid": None,
            "sms_url": "",
            "sms_method": "POST",
            "capabilities": {"voice": True, "sms": True, "mms": True, "fax": False},
            "date_created": DATE,
            "date_updated": DATE,
            "uri": f"/2010-04-01/Accounts/{account}/IncomingPhoneNumbers/{sid}.json",
        }

    async def list_numbers(self, request: web.Request) -> web.Response:
        account = request.match_info["account"]
        wanted = request.query.get("PhoneNumber")
        items = [
            n
            for n in self.numbers.values()
            if n["account_sid"] == account and (not wanted or n["phone_number"] == wanted)
        ]
        size = min(int(request.query.get("PageSize", "50")), self.page_size_cap)
        page = int(request.query.get("Page", "0"))
        chunk = items[page * size : (page + 1) * size]
        path = f"/2010-04-01/Accounts/{account}/IncomingPhoneNumbers.json"
        more = (page + 1) * size < len(items)
        query = f"PageSize={size}" + (f"&PhoneNumber={wanted}" if wanted else "")
        return web.json_response(
            {
                "incoming_phone_numbers": chunk,
                "page": page,
                "page_size": size,
                "start": page * size,
                "end": page * size + len(chunk) - 1,
                "first_page_uri": f"{path}?{query}&Page=0",
                "next_page_uri": f"{path}?{query}&Page={page + 1}" if more else None,
                "previous_page_uri": f"{path}?{query}&Page={page - 1}" if page else None,
                "uri": request.path_qs,
            }
        )

    async def create_number(self, request: web.Request) -> web.Response:
        form = await request.post()
        number = str(form.get("PhoneNumber") or "")
        if number not in self.inventory:
            return _error(400, 21422, "PhoneNumber requested is not currently available")
        del self.inventory[number]
        sid = f"PN{next(self._ids):032x}"
        self.numbers[sid] = self._number_json(sid, number, request.match_info["account"])
        for key, name in (("VoiceUrl", "voice_url"), ("VoiceMethod", "voice_method")):
            if key in form:
                self.numbers[sid][name] = str(form[key])
        return web.json_response(self.numbers[sid], status=201)

    def _find(self, request: web.Request) -> dict[str, Any] | None:
        number = self.numbers.get(request.match_info["sid"])
        if number is None or number["account_sid"] != request.match_info["account"]:
            return None
        return number

    async def fetch_number(self, request: web.Request) -> web.Response:
        number = self._find(request)
        if number is None:
            return _error(404, 20404, f"The requested resource {request.path} was not found")
        return web.json_response(number)

    async def update_number(self, request: web.Request) -> web.Response:
        number = self._find(request)
        if number is None:
            return _error(404, 20404, f"The requested resource {request.path} was not found")
        form = await request.post()
        for key, name in (
            ("VoiceUrl", "voice_url"),
            ("VoiceMethod", "voice_method"),
            ("StatusCallback", "status_callback"),
            ("StatusCallbackMethod", "status_callback_method"),
        ):
            if key in form:
                number[name] = str(form[key])
        return web.json_response(number)

    async def delete_number(self, request: web.Request) -> web.Response:
        number = self._find(request)
        if number is None:
            return _error(404, 20404, f"The requested resource {request.path} was not found")
        del self.numbers[request.match_info["sid"]]
        return web.Response(status=204)

    def changes(self) -> list[tuple[str, str]]:
        return [r for r in self.requests if r[0] != "GET"]
