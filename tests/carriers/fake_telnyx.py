"""A local server speaking Telnyx's API v2 wire format, for the ``telnyx`` SDK.

What it answers, as Telnyx documents it: ``GET /v2/balance``,
``GET /v2/available_phone_numbers`` (``filter[...]`` deepObject queries),
``POST /v2/number_orders``, ``GET|PATCH|DELETE /v2/phone_numbers[/{id}]``
(``page[number]``/``page[size]``, ``meta.total_pages``) and
``GET|POST|PATCH /v2/texml_applications[/{id}]``. Bodies are JSON objects
under ``data``; errors are ``{"errors": [{"code", "title", "detail"}]}`` with
401 for a wrong key and 403 for a key without permission. A bearer key is
required on every request. Every request is kept in ``requests``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

API_KEY = "KEY0123456789ABCDEF_test"
READ_ONLY_KEY = "KEYREADONLY_test"  # may read, may not change anything
NOW = "2026-12-01T10:00:00.000Z"


def _error(status: int, code: str, title: str, detail: str) -> web.Response:
    return web.json_response({"errors": [{"code": code, "title": title, "detail": detail}]}, status=status)


@dataclass
class FakeTelnyx:
    inventory: dict[str, dict[str, Any]] = field(default_factory=dict)
    numbers: dict[str, dict[str, Any]] = field(default_factory=dict)  # id → phone number
    applications: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path?query)
    page_size_cap: int = 2  # small pages, so the SDK has to page
    _ids: Any = field(default_factory=lambda: itertools.count(1_000_000_000_000_000_001))

    def offer(self, number: str, locality: str = "San Francisco", state: str = "CA") -> None:
        self.inventory[number] = {
            "record_type": "available_phone_number",
            "phone_number": number,
            "vanity_format": None,
            "best_effort": False,
            "quickship": True,
            "reservable": True,
            "region_information": [
                {"region_type": "rate_center", "region_name": locality},
                {"region_type": "state", "region_name": state},
                {"region_type": "country_code", "region_name": "US"},
            ],
            "cost_information": {"upfront_cost": "1.00", "monthly_cost": "1.00", "currency": "USD"},
            "features": [{"name": "voice"}, {"name": "sms"}],
        }

    def owned_by_number(self, number: str) -> dict[str, Any] | None:
        return next((n for n in self.numbers.values() if n["phone_number"] == number), None)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        r = app.router
        r.add_get("/v2/balance", self.balance)
        r.add_get("/v2/available_phone_numbers", self.available)
        r.add_post("/v2/number_orders", self.order)
        r.add_get("/v2/phone_numbers", self.list_numbers)
        r.add_get("/v2/phone_numbers/{id}", self.get_number)
        r.add_patch("/v2/phone_numbers/{id}", self.update_number)
        r.add_delete("/v2/phone_numbers/{id}", self.delete_number)
        r.add_get("/v2/texml_applications", self.list_applications)
        r.add_post("/v2/texml_applications", self.create_application)
        r.add_patch("/v2/texml_applications/{id}", self.update_application)
        return app

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs))
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if key not in (API_KEY, READ_ONLY_KEY):
            return _error(
                401, "10009", "Authentication failed", "Could not understand the provided credentials."
            )
        if key == READ_ONLY_KEY and request.method != "GET":
            return _error(
                403,
                "10010",
                "Authorization failed",
                "You do not have permission to perform the requested action.",
            )
        return await handler(request)

    async def balance(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "data": {
                    "record_type": "balance",
                    "balance": "300.00",
                    "credit_limit": "100.00",
                    "available_credit": "400.00",
                    "currency": "USD",
                    "pending": "0.00",
                }
            }
        )

    async def available(self, request: web.Request) -> web.Response:
        q = request.query
        country = q.get("filter[country_code]", "US")
        area = q.get("filter[national_destination_code]")
        limit = int(q.get("filter[limit]", "50"))
        found = [
            n
            for n in self.inventory.values()
            if country == "US" and (not area or n["phone_number"][2:5] == area)
        ][:limit]
        return web.json_response(
            {"data": found, "meta": {"total_results": len(found), "best_effort_results": 0}}
        )

    async def order(self, request: web.Request) -> web.Response:
        body = await request.json()
        wanted = [p["phone_number"] for p in body.get("phone_numbers") or []]
        if not wanted:
            return _error(422, "10015", "Invalid value", "phone_numbers is required.")
        for number in wanted:
            if number not in self.inventory:
                return _error(
                    422, "85001", "Number not available", f"{number} is not available for purchase."
                )
        order_id = f"order-{next(self._ids)}"
        ordered = []
        for number in wanted:
            del self.inventory[number]
            number_id = str(next(self._ids))
            self.numbers[number_id] = {
                "id": number_id,
                "record_type": "phone_number",
                "phone_number": number,
                "status": "active",
                "tags": [],
                "connection_id": body.get("connection_id"),
                "connection_name": None,
                "customer_reference": body.get("customer_reference"),
                "external_pin": None,
                "t38_fax_gateway_enabled": True,
                "phone_number_type": "local",
                "purchased_at": NOW,
                "created_at": NOW,
                "updated_at": NOW,
                "deletion_lock_enabled": False,
                "emergency_enabled": False,
                "call_forwarding_enabled": True,
                "cnam_listing_enabled": False,
                "caller_id_name_enabled": False,
                "call_recording_enabled": False,
                "messaging_profile_id": None,
                "billing_group_id": None,
                "source_type": "number_order",
            }
            ordered.append(
                {
                    "id": number_id,
                    "record_type": "number_order_phone_number",
                    "phone_number": number,
                    "status": "success",
                    "regulatory_requirements": [],
                    "requirements_met": True,
                }
            )
        return web.json_response(
            {
                "data": {
                    "id": order_id,
                    "record_type": "number_order",
                    "phone_numbers": ordered,
                    "phone_numbers_count": len(ordered),
                    "connection_id": body.get("connection_id"),
                    "customer_reference": body.get("customer_reference"),
                    "status": "success",
                    "requirements_met": True,
                    "created_at": NOW,
                    "updated_at": NOW,
                    "sub_number_orders_ids": [],
                }
            }
        )

    def _page(self, request: web.Request, items: list[dict[str, Any]]) -> web.Response:
        size = min(int(request.query.get("page[size]", "20")), self.page_size_cap)
        page = int(request.query.get("page[number]", "1"))
        total_pages = max(1, -(-len(items) // size))
        chunk = items[(page - 1) * size : page * size]
        return web.json_response(
            {
                "data": chunk,
                "meta": {
                    "page_number": page,
                    "page_size": size,
                    "total_pages": total_pages,
                    "total_results": len(items),
                },
            }
        )

    async def list_numbers(self, request: web.Request) -> web.Response:
        wanted = request.query.get("filter[phone_number]")
        items = [n for n in self.numbers.values() if not wanted or wanted.lstrip("+") in n["phone_number"]]
        return self._page(request, items)

    def _number(self, request: web.Request) -> dict[str, Any] | None:
        return self.numbers.get(request.match_info["id"])

    async def get_number(self, request: web.Request) -> web.Response:
        number = self._number(request)
        if number is None:
            return _error(404, "10005", "Resource not found", "The phone number was not found.")
        return web.json_response({"data": number})

    async def update_number(self, request: web.Request) -> web.Response:
        number = self._number(request)
        if number is None:
            return _error(404, "10005", "Resource not found", "The phone number was not found.")
        body = await request.json()
        if "connection_id" in body:
            connection = body["connection_id"]
            if connection and connection not in self.applications:
                return _error(
                    422, "10015", "Invalid value", "connection_id does not name a connection of this account."
                )
            number["connection_id"] = connection
            number["connection_name"] = self.applications[connection]["friendly_name"] if connection else None
        number["updated_at"] = NOW
        return web.json_response({"data": number})

    async def delete_number(self, request: web.Request) -> web.Response:
        number = self.numbers.pop(request.match_info["id"], None)
        if number is None:
            return _error(404, "10005", "Resource not found", "The phone number was not found.")
        return web.json_response({"data": {**number, "status": "deleted"}})

    async def list_applications(self, request: web.Request) -> web.Response:
        name = request.query.get("filter[friendly_name]")
        items = [a for a in self.applications.values() if not name or name in a["friendly_name"]]
        return self._page(request, items)

    async def create_application(self, request: web.Request) -> web.Response:
        body = await request.json()
        if not body.get("friendly_name") or not body.get("voice_url"):
            return _error(422, "10015", "Invalid value", "friendly_name and voice_url are required.")
        app_id = str(next(self._ids))
        self.applications[app_id] = {
            "id": app_id,
            "record_type": "texml_application",
            "active": True,
            "friendly_name": body["friendly_name"],
            "voice_url": body["voice_url"],
            "voice_method": body.get("voice_method", "post"),
            "voice_fallback_url": None,
            "status_callback": body.get("status_callback"),
            "status_callback_method": body.get("status_callback_method", "post"),
            "anchorsite_override": "Latency",
            "dtmf_type": "RFC 2833",
            "first_command_timeout": False,
            "first_command_timeout_secs": 10,
            "tags": [],
            "created_at": NOW,
            "updated_at": NOW,
        }
        return web.json_response({"data": self.applications[app_id]}, status=201)

    async def update_application(self, request: web.Request) -> web.Response:
        application = self.applications.get(request.match_info["id"])
        if application is None:
            return _error(404, "10005", "Resource not found", "No such TeXML application.")
        body = await request.json()
        for key in (
            "friendly_name",
            "voice_url",
            "voice_method",
            "status_callback",
            "status_callback_method",
        ):
            if key in body:
                application[key] = body[key]
        return web.json_response({"data": application})

    def changes(self) -> list[tuple[str, str]]:
        """The requests that change something."""
        return [r for r in self.requests if r[0] != "GET"]
