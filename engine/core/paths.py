"""Where voxflow keeps what it downloads or builds once per machine (models, binaries)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def cache_root(env: Mapping[str, str] | None = None) -> Path:
    """``$VOXFLOW_CACHE_DIR``, else ``$XDG_CACHE_HOME/voxflow``, else ``~/.cache/voxflow``."""
    env = os.environ if env is None else env
    if env.get("VOXFLOW_CACHE_DIR", "").strip():
        return Path(env["VOXFLOW_CACHE_DIR"].strip())
    if env.get("XDG_CACHE_HOME", "").strip():
        return Path(env["XDG_CACHE_HOME"].strip()) / "voxflow"
    return Path.home() / ".cache" / "voxflow"
