"""Connections: named credentials (carriers, LiveKit, databases, an LLM), encrypted at rest.

``voxflow connections add|list|test|remove`` manages them; the server, the
worker and ``voxflow numbers`` use them by name. See :mod:`engine.connections.store`.
"""

from __future__ import annotations

from engine.connections.kinds import KINDS, ConnectionKind, FieldSpec
from engine.connections.store import Connection, ConnectionStore, default_store

__all__ = ["KINDS", "Connection", "ConnectionKind", "ConnectionStore", "FieldSpec",
           "default_store"]
