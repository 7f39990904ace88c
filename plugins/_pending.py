"""Shared by node types whose runtime lands with a later piece of voxflow."""

from __future__ import annotations


def not_runnable_yet(node_type: str, needs: str) -> NotImplementedError:
    return NotImplementedError(f"the {node_type} node cannot run yet: it needs {needs}")
