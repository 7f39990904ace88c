"""The telephony server: Telnyx webhooks, routing, call records, live events, the monitor page.

Modules, roughly in the order a call meets them:

- :mod:`engine.server.telnyx` — webhook signatures (Ed25519) and what deliveries say;
- :mod:`engine.server.webhooks` — the two webhook endpoints: verify, deduplicate, act;
- :mod:`engine.server.routing` — dialled number → trigger → flow; hours; unknown numbers;
- :mod:`engine.server.desk` — taking a call (starting its workflow), hangups;
- :mod:`engine.server.texml` — the TeXML answers;
- :mod:`engine.server.records` — call records on SQLite or PostgreSQL;
- :mod:`engine.server.recorder` — the worker side: records and live events from activities;
- :mod:`engine.server.events` / :mod:`engine.server.streams` — live events, SSE and WebSocket;
- :mod:`engine.server.api` / :mod:`engine.server.openapi` — the JSON API and its document;
- :mod:`engine.server.metrics` — Prometheus;
- :mod:`engine.server.diagram_svg` and ``monitor/`` — the monitor page;
- :mod:`engine.server.reload` — hot reload reporting;
- :mod:`engine.server.settings`, :mod:`engine.server.context`, :mod:`engine.server.app`,
  :mod:`engine.server.stack` — configuration and assembly;
- :mod:`engine.server.livekit_setup` — ``voxflow livekit setup``.
"""
