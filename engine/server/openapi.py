"""The OpenAPI 3.1 document of the server, served at /api/openapi.json."""

from __future__ import annotations

from typing import Any

from engine.server.events import CLIENT_EVENT_TYPES
from engine.server.records import ALL_STATUSES
from engine.server.stats_api import OPENAPI_PATHS as STATS_PATHS

_JSON = "application/json"


def _ok(description: str, schema: dict[str, Any] | None = None, content_type: str = _JSON) -> dict[str, Any]:
    return {
        "200": {
            "description": description,
            "content": {content_type: {"schema": schema or {"type": "object"}}},
        }
    }


def _errors(*codes: int) -> dict[str, Any]:
    words = {
        400: "Malformed request",
        401: "Missing or wrong credentials or signature",
        403: "A WebSocket opened from another site's page",
        404: "Not found",
        405: "TeXML over GET (its query is not covered by the signature): use POST",
        409: "A replayed webhook",
        413: "Body too large",
        503: "Temporarily unable (Temporal down), or not configured (no Telnyx or LiveKit key, no voice bus)",
    }
    return {
        str(code): {
            "description": words[code],
            "content": {_JSON: {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for code in codes
    }


def _param(
    name: str, where: str = "path", description: str = "", schema: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "description": description,
        "schema": schema or {"type": "string"},
    }


_SIGNED: list[dict[str, list[str]]] = [{"telnyxSignature": []}]
_TOKEN: list[dict[str, list[str]]] = [{"bearerToken": []}, {"tokenQuery": []}]
_SSE = {
    "description": "A stream of live events (text/event-stream).",
    "content": {"text/event-stream": {"schema": {"$ref": "#/components/schemas/LiveEvent"}}},
}


def openapi_document() -> dict[str, Any]:
    texml_form = {
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["CallSid"],
                    "properties": {
                        k: {"type": "string"}
                        for k in (
                            "CallSid",
                            "From",
                            "To",
                            "CallStatus",
                            "Direction",
                            "AccountSid",
                            "CallbackSource",
                            "SequenceNumber",
                            "CallerId",
                            "ShakenStirAttestation",
                            "ShakenStirValidated",
                            "CallSessionId",
                            "CallLegId",
                            "HangupCause",
                            "RecordingStatus",
                            "RecordingSid",
                            "RecordingUrl",
                        )
                    },
                }
            }
        }
    }
    texml_ok = _ok(
        "TeXML: <Dial><Sip> to LiveKit, <Say> and <Hangup/>, or <Reject/>.",
        {"type": "string"},
        "application/xml",
    )
    paths: dict[str, Any] = {
        "/webhooks/telnyx": {
            "post": {
                "summary": "Telnyx Call Control v2 events",
                "description": "call.initiated (answered and bridged with Call Control commands "
                "when TELNYX_API_KEY is set, refused otherwise), call.answered, "
                "call.hangup, call.dtmf.received, call.speak.ended and "
                "call.recording.saved (found by call_control_id, call_session_id, "
                "call_leg_id or recording_id). Signed with Ed25519; a second "
                "delivery of a handled event is acknowledged without being handled "
                "again; one that comes while an earlier delivery is at work gets a "
                "503 (Retry-After).",
                "security": _SIGNED,
                "requestBody": {
                    "required": True,
                    "content": {_JSON: {"schema": {"$ref": "#/components/schemas/TelnyxEvent"}}},
                },
                "responses": {**_ok("Handled, ignored or a duplicate."), **_errors(400, 401, 409, 413, 503)},
            }
        },
        "/webhooks/telnyx/texml": {
            "get": {
                "summary": "TeXML over GET: refused (405) when signatures are checked",
                "description": "Telnyx's signature covers a request's body; a GET has "
                "none, so its query would be unsigned. Only `voxflow dev` "
                "without a key accepts it.",
                "security": _SIGNED,
                "parameters": [_param(p, "query") for p in ("CallSid", "From", "To", "CallStatus")],
                "responses": {**texml_ok, **_errors(400, 401, 405, 409, 503)},
            },
            "post": {
                "summary": "TeXML for an inbound call, or a status/recording callback",
                "description": "The instruction fetch starts the call; progress "
                "callbacks (CallbackSource, CallStatus initiated, ringing, "
                "in-progress, completed...) and recording callbacks "
                "(RecordingStatus, RecordingSid, RecordingUrl) update the "
                "call and never start one.",
                "security": _SIGNED,
                "requestBody": texml_form,
                "responses": {**texml_ok, **_errors(400, 401, 409, 413, 503)},
            },
        },
        "/webhooks/livekit": {
            "post": {
                "summary": "LiveKit webhooks: the voice agent left a call's room",
                "description": "participant_left of the voxflow agent (kind AGENT) in a room "
                "call-<id> while the call goes on becomes call:agent_left on the "
                "call's voice bus, so the call waits for a new agent (or ends with "
                "an apology after 10 s). Other events are acknowledged and ignored. "
                "Signed by LiveKit with LIVEKIT_API_KEY / LIVEKIT_API_SECRET.",
                "security": [{"livekitToken": []}],
                "requestBody": {
                    "required": True,
                    "content": {_JSON: {"schema": {"$ref": "#/components/schemas/LiveKitWebhookEvent"}}},
                },
                "responses": {**_ok("Handled, ignored or a duplicate."), **_errors(400, 401, 413, 503)},
            }
        },
        "/api/flows": {
            "get": {
                "summary": "Flows being served",
                "security": _TOKEN,
                "responses": {**_ok("Flows."), **_errors(401)},
            }
        },
        "/api/flows/{flow_id}": {
            "get": {
                "summary": "One flow: nodes, settings, Mermaid text",
                "security": _TOKEN,
                "parameters": [_param("flow_id")],
                "responses": {**_ok("The flow."), **_errors(401, 404)},
            }
        },
        "/api/flows/{flow_id}/diagram.svg": {
            "get": {
                "summary": "The flow's diagram as SVG (nodes carry data-node)",
                "security": _TOKEN,
                "parameters": [_param("flow_id")],
                "responses": {**_ok("SVG.", {"type": "string"}, "image/svg+xml"), **_errors(401, 404)},
            }
        },
        "/api/flows/{flow_id}/events": {
            "get": {
                "summary": "Live events of the calls on one flow (SSE)",
                "security": _TOKEN,
                "parameters": [_param("flow_id")],
                "responses": {"200": _SSE, **_errors(401)},
            }
        },
        "/api/triggers": {
            "get": {
                "summary": "Phone numbers and the flows they start",
                "security": _TOKEN,
                "responses": {**_ok("Triggers."), **_errors(401)},
            }
        },
        "/api/problems": {
            "get": {
                "summary": "Errors and warnings of the last reload of flows/",
                "security": _TOKEN,
                "responses": {**_ok("Problems."), **_errors(401)},
            }
        },
        "/api/calls": {
            "get": {
                "summary": "Call records, newest first",
                "security": _TOKEN,
                "parameters": [
                    _param(
                        "status",
                        "query",
                        "Only calls with this status.",
                        {"type": "string", "enum": list(ALL_STATUSES)},
                    ),
                    _param("flow_id", "query", "Only calls of this flow."),
                    _param("live", "query", "1: only ringing and active calls."),
                    _param(
                        "limit", "query", "At most this many (default 50, at most 1000).", {"type": "integer"}
                    ),
                ],
                "responses": {
                    **_ok(
                        "Calls.",
                        {
                            "type": "object",
                            "properties": {
                                "calls": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/CallRecord"},
                                }
                            },
                        },
                    ),
                    **_errors(400, 401),
                },
            }
        },
        "/api/calls/{call_id}": {
            "get": {
                "summary": "One call record with its transcript",
                "security": _TOKEN,
                "parameters": [_param("call_id")],
                "responses": {
                    **_ok("The call.", {"$ref": "#/components/schemas/CallRecord"}),
                    **_errors(401, 404),
                },
            }
        },
        "/api/calls/{call_id}/events": {
            "get": {
                "summary": "Live events of one call (SSE)",
                "security": _TOKEN,
                "parameters": [_param("call_id")],
                "responses": {"200": _SSE, **_errors(401)},
            }
        },
        "/api/events": {
            "get": {
                "summary": "Live events of every call (SSE)",
                "security": _TOKEN,
                "responses": {"200": _SSE, **_errors(401)},
            }
        },
        "/api/ws": {
            "get": {
                "summary": "Live events over WebSocket",
                "description": "Upgrade to WebSocket; each message is a LiveEvent with its id.",
                "security": _TOKEN,
                "parameters": [_param("call_id", "query"), _param("flow_id", "query")],
                "responses": {"101": {"description": "Switching to WebSocket."}, **_errors(401, 403)},
            }
        },
        "/api/internal/call-context/{call_id}": {
            "get": {
                "summary": "What the voice agent needs to serve a call (room call-<id>)",
                "security": [{"internalToken": []}],
                "parameters": [_param("call_id", description="The call id, or the room name.")],
                "responses": {**_ok("The call's context."), **_errors(401, 404)},
            }
        },
        "/api/openapi.json": {"get": {"summary": "This document", "responses": _ok("OpenAPI 3.1.")}},
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": _ok("Metrics.", {"type": "string"}, "text/plain"),
            }
        },
        "/healthz": {"get": {"summary": "Liveness", "responses": _ok("OK.")}},
        "/monitor/": {
            "get": {"summary": "The monitor page", "responses": _ok("HTML.", {"type": "string"}, "text/html")}
        },
    }
    paths.update(STATS_PATHS)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "voxflow server",
            "version": "1",
            "description": "Telnyx and LiveKit webhooks, call records, live events and the monitor.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "telnyxSignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "telnyx-signature-ed25519",
                    "description": "Ed25519 over '<telnyx-timestamp>|<raw body>'.",
                },
                "bearerToken": {"type": "http", "scheme": "bearer", "description": "VOXFLOW_API_TOKEN"},
                "tokenQuery": {
                    "type": "apiKey",
                    "in": "query",
                    "name": "token",
                    "description": "VOXFLOW_API_TOKEN, for EventSource and WebSocket",
                },
                "livekitToken": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "A JWT (HS256, the LiveKit API secret, issuer "
                    "the API key) whose sha256 claim is the base64 SHA-256 of the "
                    "body.",
                },
                "internalToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "VOXFLOW_INTERNAL_TOKEN",
                },
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}, "reason": {"type": "string"}},
                },
                "TelnyxEvent": {
                    "type": "object",
                    "required": ["data"],
                    "properties": {
                        "data": {
                            "type": "object",
                            "required": ["event_type", "id", "payload"],
                            "properties": {
                                "event_type": {"type": "string"},
                                "id": {"type": "string"},
                                "occurred_at": {"type": "string"},
                                "payload": {"type": "object"},
                            },
                        },
                        "meta": {"type": "object"},
                    },
                },
                "LiveKitWebhookEvent": {
                    "type": "object",
                    "required": ["event"],
                    "properties": {
                        "event": {"type": "string"},
                        "id": {"type": "string"},
                        "createdAt": {"type": "string"},
                        "room": {"type": "object", "properties": {"name": {"type": "string"}}},
                        "participant": {
                            "type": "object",
                            "properties": {
                                "identity": {"type": "string"},
                                "kind": {"type": "string"},
                                "attributes": {"type": "object"},
                                "disconnectReason": {"type": "string"},
                            },
                        },
                    },
                },
                "CallRecord": {
                    "type": "object",
                    "properties": {
                        "call_id": {"type": "string"},
                        "telnyx_call_id": {"type": "string"},
                        "caller": {"type": "string"},
                        "called": {"type": "string"},
                        "flow_id": {"type": ["string", "null"]},
                        "flow_version": {"type": ["string", "null"]},
                        "status": {"type": "string", "enum": list(ALL_STATUSES)},
                        "reason": {"type": ["string", "null"]},
                        "started_at": {"type": ["number", "null"]},
                        "answered_at": {"type": ["number", "null"]},
                        "ended_at": {"type": ["number", "null"]},
                        "duration": {"type": ["number", "null"]},
                        "current_node": {"type": ["string", "null"]},
                        "node_path": {"type": "array", "items": {"type": "string"}},
                        "variables": {"type": "object"},
                        "recording_url": {"type": ["string", "null"]},
                        "recording_id": {"type": ["string", "null"]},
                        "telnyx_session_id": {"type": ["string", "null"]},
                        "telnyx_leg_id": {"type": ["string", "null"]},
                        "transcript": {"type": "array", "items": {"type": "object"}},
                    },
                },
                "LiveEvent": {
                    "type": "object",
                    "required": ["type"],
                    "properties": {
                        "type": {"type": "string", "enum": list(CLIENT_EVENT_TYPES)},
                        "call_id": {"type": ["string", "null"]},
                        "flow_id": {"type": ["string", "null"]},
                        "at": {"type": "number"},
                        "data": {"type": "object"},
                    },
                },
            },
        },
    }
