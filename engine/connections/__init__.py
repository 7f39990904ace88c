"""Connections: named credentials (carriers, LiveKit, databases, an LLM), encrypted at rest.

``voxflow connections add|list|test|remove`` manages them; the server, the
worker and ``voxflow numbers`` use them by name. :mod:`engine.connections.kinds`
says what each kind holds, :mod:`engine.connections.store` keeps them (Fernet),
:mod:`engine.connections.environment` turns named ones into the variables they
stand for, and :mod:`engine.connections.checks` tests them against the service.
"""

from __future__ import annotations

from engine.connections.kinds import KINDS, ConnectionKind, FieldSpec

__all__ = ["KINDS", "ConnectionKind", "FieldSpec"]
