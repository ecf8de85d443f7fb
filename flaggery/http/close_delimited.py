"""Close-delimited response bodies for HTTP/1.0 requests.

uvicorn's httptools protocol frames every response without ``Content-Length`` as chunked,
whatever the request's version; an HTTP/1.0 client does not know chunked framing and reads
the chunk sizes as part of the body (the event streams ``/v1/stream``, ``/ofrep/v1/events``
and ``/ui/stream`` are such responses). RFC 9112 (6.3): such a body ends when the server
closes the connection, which is what h11 does and what `close_delimited` makes uvicorn's
request cycle do. An HTTP/1.0 connection is never kept alive by uvicorn, so nothing follows.

uvicorn internals used (listed in `flaggery.http.protocol` too): ``RequestResponseCycle.send``
and its attributes ``scope``, ``response_started``, ``response_complete``, ``disconnected``,
``chunked_encoding`` (set to False before the start message, uvicorn adds no
``transfer-encoding``), ``flow``, ``transport``, ``message_event`` and ``on_response``.
"""

from __future__ import annotations

from starlette.types import Message
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

__all__ = ["close_delimited"]

_FRAMING = (b"content-length", b"transfer-encoding")


def close_delimited(cycle: RequestResponseCycle) -> None:
    """Make `cycle` (an HTTP/1.0 request's) send a response without ``Content-Length`` or
    ``Transfer-Encoding`` as its bytes, closing the connection at its end."""
    send = cycle.send
    delimited = False

    async def send_1_0(message: Message) -> None:
        nonlocal delimited
        if message["type"] == "http.response.start" and not cycle.response_started:
            delimited = _unframed(cycle, message)
            if delimited:
                cycle.chunked_encoding = False  # uvicorn then adds no transfer-encoding
        elif delimited and message["type"] == "http.response.body":
            await _send_body(cycle, message)
            return
        await send(message)  # type: ignore[arg-type]

    cycle.send = send_1_0  # type: ignore[method-assign, assignment]


def _unframed(cycle: RequestResponseCycle, start: Message) -> bool:
    """Whether the response `start` begins has a body and no framing of its own."""
    if cycle.scope["method"] == "HEAD" or start["status"] in (204, 304):
        return False
    return not any(name.lower() in _FRAMING for name, _ in start.get("headers", ()))


async def _send_body(cycle: RequestResponseCycle, message: Message) -> None:
    """uvicorn's send of a body message, without framing: the bytes, and a close at the end."""
    if cycle.response_complete:
        raise RuntimeError("Unexpected ASGI message 'http.response.body' after the response.")
    if cycle.flow.write_paused and not cycle.disconnected:
        await cycle.flow.drain()
    if cycle.disconnected:
        return
    cycle.transport.write(message.get("body", b""))
    if not message.get("more_body", False):
        cycle.response_complete = True
        cycle.message_event.set()
        cycle.transport.close()
        cycle.on_response()
