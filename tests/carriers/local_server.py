"""An aiohttp app on a free port, on its own event-loop thread, for tests that call it from sync code.

The carriers' SDKs (telnyx, twilio) are synchronous clients here, as
``voxflow numbers`` and ``voxflow connections test`` use them, so the local
servers they talk to cannot share the test's thread.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from aiohttp import web

from tests.background_loop import BackgroundLoop


@contextlib.contextmanager
def serving(app: web.Application) -> Iterator[str]:
    """``http://127.0.0.1:<port>`` while the block runs."""
    loop = BackgroundLoop()
    runner = web.AppRunner(app)

    async def start() -> str:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}"

    try:
        yield loop.run(start())
    finally:
        loop.run(runner.cleanup())
        loop.close()
