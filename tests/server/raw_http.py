"""HTTP/1.1 requests written byte by byte, for what no well-behaved client sends.

aiohttp's client will not put a byte that is not Latin-1 (or a bare surrogate) in a
header, but an attacker's socket will; the server must answer those too.
"""

from __future__ import annotations

import asyncio
import urllib.parse


async def raw_request(
    url: str,
    method: str,
    target: bytes,
    headers: list[tuple[bytes, bytes]],
    body: bytes = b"",
    timeout: float = 30.0,
) -> tuple[int, bytes]:
    """Send one request (``target``: path and query as bytes); return (status, body)."""
    parts = urllib.parse.urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        lines = [
            method.encode() + b" " + target + b" HTTP/1.1",
            f"Host: {parts.hostname}:{parts.port}".encode(),
            b"Connection: close",
        ]
        lines += [name + b": " + value for name, value in headers]
        if body or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(body)}".encode())
        writer.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        content = await asyncio.wait_for(reader.readexactly(length), timeout) if length else b""
        return status, content
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass
