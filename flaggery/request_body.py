"""Reading a request body with a bound, for every route that takes one (the REST API's JSON
bodies and OFREP's evaluation context): the declared ``Content-Length`` is refused before a
byte is read, and a body sent without one (chunked) is cut off as soon as it passes the bound.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.requests import ClientDisconnect
from starlette.types import Receive

__all__ = ["BodyTooLarge", "read_body"]


class BodyTooLarge(Exception):
    """The body has (or declares) more than `limit` bytes; each caller answers its own 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"The body may have at most {limit} bytes.")
        self.limit = limit


async def read_body(receive: Receive, headers: Iterable[tuple[bytes, bytes]], limit: int) -> bytes:
    """The whole body of an ASGI request with these `headers` (lower-case names), in bytes.

    Raises `BodyTooLarge` if ``Content-Length`` declares more than `limit` bytes or more
    arrive, and starlette's `ClientDisconnect` if the client leaves before the end."""
    for name, value in headers:
        # Compared as text first: int() of a header with 4,301+ digits raises ValueError.
        if name == b"content-length" and value.isdigit() and _over(value, limit):
            raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _over(digits: bytes, limit: int) -> bool:
    return len(digits) > len(str(limit)) or int(digits) > limit
