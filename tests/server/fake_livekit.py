"""A local server speaking LiveKit's Twirp API (the SIP service), for ``voxflow livekit setup``.

It answers ``POST /twirp/livekit.SIP/<Method>`` with LiveKit's protobuf messages
(content type application/protobuf, as livekit-api sends them; JSON errors as
Twirp writes them), checks the bearer token is a JWT signed with the API secret
and carrying the SIP admin grant, and keeps trunks and rules in memory.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from aiohttp import web
from livekit.api.access_token import TokenVerifier
from livekit.protocol import sip

API_KEY = "devkey"
API_SECRET = "a-secret-at-least-thirty-two-characters-long"


@dataclass
class FakeLiveKit:
    trunks: dict[str, sip.SIPInboundTrunkInfo] = field(default_factory=dict)
    rules: dict[str, sip.SIPDispatchRuleInfo] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/twirp/livekit.SIP/{method}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        self.calls.append(method)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        try:
            claims = TokenVerifier(API_KEY, API_SECRET).verify(token)
        except Exception:
            return web.json_response({"code": "unauthenticated", "msg": "bad token"}, status=401)
        if not (claims.sip and claims.sip.admin):
            return web.json_response({"code": "permission_denied", "msg": "no sip admin"}, status=403)
        if request.content_type != "application/protobuf":
            return web.json_response({"code": "malformed", "msg": "protobuf only"}, status=400)
        body = await request.read()
        handler = getattr(self, method, None)
        if handler is None:
            return web.json_response({"code": "bad_route", "msg": method}, status=404)
        reply = handler(body)
        if isinstance(reply, web.Response):
            return reply
        return web.Response(body=reply.SerializeToString(), content_type="application/protobuf")

    def ListSIPInboundTrunk(self, body: bytes) -> sip.ListSIPInboundTrunkResponse:
        return sip.ListSIPInboundTrunkResponse(items=list(self.trunks.values()))

    def CreateSIPInboundTrunk(self, body: bytes) -> sip.SIPInboundTrunkInfo:
        request = sip.CreateSIPInboundTrunkRequest.FromString(body)
        trunk = sip.SIPInboundTrunkInfo()
        trunk.CopyFrom(request.trunk)
        trunk.sip_trunk_id = f"ST_{next(self._ids)}"
        self.trunks[trunk.sip_trunk_id] = trunk
        return trunk

    def UpdateSIPInboundTrunk(self, body: bytes) -> sip.SIPInboundTrunkInfo | web.Response:
        request = sip.UpdateSIPInboundTrunkRequest.FromString(body)
        if request.sip_trunk_id not in self.trunks:
            return web.json_response({"code": "not_found", "msg": "no trunk"}, status=404)
        trunk = sip.SIPInboundTrunkInfo()
        trunk.CopyFrom(request.replace)
        trunk.sip_trunk_id = request.sip_trunk_id
        self.trunks[trunk.sip_trunk_id] = trunk
        return trunk

    def ListSIPDispatchRule(self, body: bytes) -> sip.ListSIPDispatchRuleResponse:
        return sip.ListSIPDispatchRuleResponse(items=list(self.rules.values()))

    def CreateSIPDispatchRule(self, body: bytes) -> sip.SIPDispatchRuleInfo:
        request = sip.CreateSIPDispatchRuleRequest.FromString(body)
        rule = sip.SIPDispatchRuleInfo()
        rule.CopyFrom(request.dispatch_rule)
        rule.sip_dispatch_rule_id = f"SDR_{next(self._ids)}"
        self.rules[rule.sip_dispatch_rule_id] = rule
        return rule

    def UpdateSIPDispatchRule(self, body: bytes) -> sip.SIPDispatchRuleInfo | web.Response:
        request = sip.UpdateSIPDispatchRuleRequest.FromString(body)
        if request.sip_dispatch_rule_id not in self.rules:
            return web.json_response({"code": "not_found", "msg": "no rule"}, status=404)
        rule = sip.SIPDispatchRuleInfo()
        rule.CopyFrom(request.replace)
        rule.sip_dispatch_rule_id = request.sip_dispatch_rule_id
        self.rules[rule.sip_dispatch_rule_id] = rule
        return rule
