"""Each test gets its own connections file and key, in its own folder, and no carrier variables."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

CARRIER_VARIABLES = (
    "TELNYX_API_KEY",
    "TELNYX_PUBLIC_KEY",
    "TELNYX_BASE_URL",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_BASE_URL",
    "VOXFLOW_CONNECTIONS",
    "VOXFLOW_RECORDS_CONNECTION",
    "VOXFLOW_PUBLIC_URL",
    "VOXFLOW_SECRET_KEY",
    "VOXFLOW_SECRET_KEY_FILE",
    "VOXFLOW_CONNECTIONS_FILE",
    "VOXFLOW_FLOWS",
    "LIVEKIT_URL",
    "LIVEKIT_API_KEY",
    "LIVEKIT_API_SECRET",
)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in CARRIER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VOXFLOW_SECRET_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)
    return tmp_path
