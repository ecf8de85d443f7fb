"""Reading a request body with a bound, for every route that takes one (the REST API's JSON
bodies and OFREP's evaluation context): the declared ``Content-Length`` is refused before a
byte is read, and a body sent without one (chunked) is cut off as soon as it passes the bound.
And the one check of a request's path and query text (`utf8_path`), for every entry point
(the REST routes, the flags fast paths, the dashboard, OFREP).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import unquote_to_bytes

from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope

__all__ = ["BodyTooLarge", "read_body", "utf8_path"]


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


def utf8_path(scope: Scope) -> bool:
    """Whether the request's path and query string are UTF-8 once percent-decoded. uvicorn
    and Starlette decode them with U+FFFD for what is not, so ``%FF`` and ``%EF%BF%BD`` (or
    Latin-1 ``caf%E9`` and ``caf%FC``) would name the same key, entity, flag or ``like_key``.
    Every entry point refuses such a request instead: the REST routes and the flags fast
    paths with a 400 ValidationError (flaggery.http.endpoint), the dashboard likewise
    (flaggery.ui.mount), OFREP with a 400 ``PARSE_ERROR`` (flaggery.ofrep.app). A byte scan
    of each when it has no ``%``."""
    for raw in (scope.get("raw_path") or b"", scope.get("query_string") or b""):
        if b"%" in raw:
            try:
                unquote_to_bytes(raw).decode("utf-8")
            except UnicodeDecodeError:
                return False
    return True
