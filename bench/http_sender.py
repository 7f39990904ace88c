"""A minimal keep-alive HTTP/1.1 sender, standing in for Telnyx's webhook sender.

The server benchmark times a webhook from the sender's side. A Python HTTP
client such as aiohttp's spends about as long building the request and parsing
the answer as the server spends reading it (a GET round trip to the server is
~0.8 ms with aiohttp's client, ~0.4 ms with this one, on this machine), and
Telnyx's sender is not Python: so the benchmark's target figure is taken with
this sender, which writes prepared bytes and reads the status line, headers and
``Content-Length`` bytes back, and aiohttp's figure is printed beside it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping


class HttpSender:
    """One kept-alive connection; requests go one at a time."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> HttpSender:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._writer is not None:
            self._writer.close()
            await self._writer.wait_closed()

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> tuple[int, bytes]:
        """Send one request; the answer's status and body."""
        assert self._reader is not None and self._writer is not None, "use 'async with'"
        lines = [
            f"{method} {path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            f"Content-Length: {len(body)}",
        ]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        status_line = await self._reader.readline()
        length = 0
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        return int(status_line.split()[1]), await self._reader.readexactly(length)
