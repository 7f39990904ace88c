"""The real LiveKit server for these tests: built once from its Go module, started per session.

``.ci/run`` builds it before the tests (``python -m engine.livekit_testbed build``);
here :func:`engine.livekit_testbed.build` finds it in the cache, or builds it
(a few minutes, once) where nobody did. Nothing is skipped: without Go the
tests fail and say so.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine import livekit_testbed
from engine.livekit_testbed import LiveKitEndpoints, LiveKitTestBed


@pytest.fixture(scope="session")
def livekit_binary() -> str:
    return str(livekit_testbed.build(quiet=True))


@pytest.fixture(scope="session")
def real_livekit(livekit_binary: str) -> Iterator[LiveKitEndpoints]:
    with LiveKitTestBed() as bed:
        assert bed.endpoints is not None
        yield bed.endpoints
