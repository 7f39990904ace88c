from __future__ import annotations

import pytest

from tests.voice.support import Buses


@pytest.fixture(params=["memory", "redis"])
def buses(request: pytest.FixtureRequest) -> Buses:
    """Both bus implementations; Redis is the real server from tests.redis_fixture."""
    if request.param == "memory":
        return Buses("memory")
    return Buses("redis", request.getfixturevalue("redis_url"))


@pytest.fixture
def memory_buses() -> Buses:
    return Buses("memory")
