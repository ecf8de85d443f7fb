"""A scripted stand-in for a flaggery server, on 127.0.0.1, for the followers' tests (edges
and the remote client): it answers what each test says, including what a real server never
would (a snapshot that does not build, a stream that closes at once, unknown event types, a
flags body that is not JSON), and counts the requests.

Each request gets one HTTP/1.1 response and ``Connection: close``. Routes are coroutines
``handler(request, respond)`` registered by path; ``respond(status, headers, body)`` sends a
whole response, ``open_stream(headers)`` starts an event stream whose events the handler
writes with ``send(event)`` until it returns (then the connection closes).
"""

from __future__ import annotations

import asyncio
import contextlib
from array import array
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from flaggery.engine.model import Feature, State, SubjectColumns
from flaggery.engine.state_codec import state_chunks

__all__ = ["Request", "Stream", "Upstream", "scripted_upstream", "snapshot_bytes", "state_of"]


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]


class Stream:
    """An open event stream: `send` writes one event (or a comment) and flushes it."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    async def send(self, kind: str, revision: int, data: str) -> None:
        await self.raw(f"id: {revision}\r\nevent: {kind}\r\ndata: {data}\r\n\r\n")

    async def raw(self, text: str) -> None:
        self._writer.write(text.encode())
        await self._writer.drain()


Handler = Callable[[Request, "Exchange"], Awaitable[None]]


class Exchange:
    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    async def respond(self, status: int, headers: dict[str, str], body: bytes) -> None:
        head = [f"HTTP/1.1 {status} X", f"content-length: {len(body)}", "connection: close"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        self._writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        await self._writer.drain()

    async def open_stream(self, headers: dict[str, str] | None = None) -> Stream:
        head = ["HTTP/1.1 200 OK", "content-type: text/event-stream", "connection: close"]
        head += [f"{name}: {value}" for name, value in (headers or {}).items()]
        self._writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        await self._writer.drain()
        return Stream(self._writer)


@dataclass
class Upstream:
    url: str
    routes: dict[str, Handler] = field(default_factory=dict)
    requests: Counter[str] = field(default_factory=Counter)
    """path -> how many requests it got."""


def state_of(revision: int, default: str = "A", bucket_of_2: int = 0) -> State:
    """Two subjects (1 and 2) in bucket 0 of one, feature ``f`` with variants A and B and
    ``default``. ``bucket_of_2``: another bucket makes the state unbuildable (a subject in a
    bucket the state does not list)."""
    return State(
        revision=revision,
        buckets=(0,),
        subjects=SubjectColumns(
            ids=array("q", [1, 2]), weights=array("q", [1, 1]), buckets=array("q", [0, bucket_of_2])
        ),
        memberships={},
        features={"f": Feature("f", ("A", "B"), default)},
        rollouts={},
        abtests={},
        groups={},
        key_salt=b"\x01" * 16,
    )


def snapshot_bytes(state: State) -> bytes:
    return b"".join(bytes(chunk) for chunk in state_chunks(state))


class ScriptedState:
    """A server at `state`: GET /v1/snapshot sends it, GET /v1/stream announces its revision
    and sends what the test puts in `events` (("end", 0, ""): close the stream)."""

    def __init__(self, upstream: Upstream, revision: int = 1) -> None:
        self.state = state_of(revision)
        self.stale = False
        """What the stream's X-Flaggery-Stale header says."""
        self.events: asyncio.Queue[tuple[str, int, str]] = asyncio.Queue()
        upstream.routes["/v1/snapshot"] = self.snapshot
        upstream.routes["/v1/stream"] = self.stream

    async def snapshot(self, _request: Request, exchange: Exchange) -> None:
        revision = {"x-flaggery-revision": str(self.state.revision)}
        await exchange.respond(200, revision, snapshot_bytes(self.state))

    async def stream(self, _request: Request, exchange: Exchange) -> None:
        headers = {"x-flaggery-revision": str(self.state.revision)}
        headers["x-flaggery-stale"] = "true" if self.stale else "false"
        stream = await exchange.open_stream(headers)
        await stream.raw(": open\r\n\r\n")  # as flaggery.stream.sse sends it
        while (event := await self.events.get())[0] != "end":  # "end": close the stream
            await stream.send(*event)


@contextlib.asynccontextmanager
async def scripted_upstream() -> AsyncIterator[Upstream]:
    upstream = Upstream("")
    connections: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        connections.add(task)
        try:
            request = await _read_request(reader)
            upstream.requests[request.path] += 1
            handler = upstream.routes.get(request.path)
            exchange = Exchange(writer)
            if handler is None:
                await exchange.respond(404, {}, b"{}")
            else:
                await handler(request, exchange)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client left, or the server is closing (the task ends here either way)
        finally:
            writer.close()
            connections.discard(task)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    upstream.url = f"http://127.0.0.1:{port}"
    try:
        yield upstream
    finally:
        server.close()
        for task in list(connections):
            task.cancel()
        await asyncio.gather(*connections, return_exceptions=True)


async def _read_request(reader: asyncio.StreamReader) -> Request:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    method, target, _ = head[0].split(" ", 2)
    headers = {}
    for line in head[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return Request(method, target.split("?", 1)[0], headers)
