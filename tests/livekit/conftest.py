"""The real LiveKit server for these tests: built once from its Go module, started per session.

``.ci/run`` builds it before the tests (``python -m engine.testbed.livekit_server build``);
here :func:`engine.testbed.livekit_server.build` finds it in the cache, or builds it
(a few minutes, once) where nobody did. Nothing is skipped: without Go the
tests fail and say so.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine.testbed import livekit_server
from engine.testbed.livekit_server import LiveKitEndpoints, LiveKitTestBed


@pytest.fixture(scope="session")
def livekit_binary() -> str:
    return str(livekit_server.build(quiet=True))


@pytest.fixture(scope="session")
def real_livekit(livekit_binary: str) -> Iterator[LiveKitEndpoints]:
    with LiveKitTestBed() as bed:
        assert bed.endpoints is not None
        yield bed.endpoints
