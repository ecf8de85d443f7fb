"""Raw ASGI calls for tests that must not wait for a response's end (event streams)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

Started = tuple[int, dict[bytes, bytes]]
"""A response's status and headers (names in lower case)."""


@contextlib.asynccontextmanager
async def requesting(
    app: Any, method: str, path: str, headers: list[tuple[str, str]], body: bytes = b""
) -> AsyncIterator[asyncio.Future[Started]]:
    """Call ``app`` with one request; yields the future of its response's start. The request
    runs until the block ends, then the client is gone (a disconnect, then cancellation)."""
    started: asyncio.Future[Started] = asyncio.get_running_loop().create_future()
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    gone = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and not started.done():
            started.set_result((message["status"], dict(message.get("headers", []))))

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "server": ("localhost", 80), "client": ("127.0.0.1", 5000),
        "headers": [(b"host", b"localhost"),
                    *((k.lower().encode(), v.encode()) for k, v in headers)],
    }  # fmt: skip
    task = asyncio.create_task(app(scope, receive, send))
    try:
        yield started
    finally:
        gone.set()
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


async def first_status(
    app: Any, method: str, path: str, headers: list[tuple[str, str]], body: bytes = b""
) -> Started:
    """The status and headers ``app`` starts its response with; then the client leaves."""
    async with requesting(app, method, path, headers, body) as started:
        return await asyncio.wait_for(asyncio.shield(started), 10)
