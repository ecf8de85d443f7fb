"""A real HTTP receiver on loopback for webhook tests: a TCP server that reads each request
(head and Content-Length body) and answers with the status its test sets."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    port: int = 0
    status: int = 200
    """What the next requests are answered: a test flips it to fail and recover."""
    extra_headers: str = ""
    received: list[Received] = field(default_factory=list)
    """Every request, in arrival order, whatever it was answered."""
    accepted: list[Received] = field(default_factory=list)
    """The requests answered 2xx."""
    hold: asyncio.Event | None = None
    """While set to an unset event, requests are read and then wait for it: a slow receiver."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            lines = head.split("\r\n")[1:]
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in lines if line)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            request = Received(headers, body)
            self.received.append(request)
            if self.hold is not None:
                await self.hold.wait()
            if 200 <= self.status < 300:
                self.accepted.append(request)
            writer.write(
                f"HTTP/1.1 {self.status} X\r\nContent-Length: 0\r\nConnection: close\r\n"
                f"{self.extra_headers}\r\n".encode()
            )
            await writer.drain()
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    target = Receiver()
    server = await asyncio.start_server(target.handle, "127.0.0.1", 0)
    target.port = server.sockets[0].getsockname()[1]
    try:
        yield target
    finally:
        server.close()
        await server.wait_closed()
