"""One watchdog per process ends the streams whose send stays blocked (a client that stopped
reading), and leaves the others alone."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from sse_starlette.sse import SendTimeoutError
from starlette.types import Message

from flaggery.stream.send_watch import SendWatch, WatchedEventSourceResponse

SCOPE = {"type": "http", "method": "GET"}


class Client:
    """The ASGI side of one stream: reads body chunks until it is told to stop reading."""

    def __init__(self) -> None:
        self.chunks = 0
        self.reading = True
        self.disconnected = asyncio.Event()

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.body" and message["body"]:
            if not self.reading:
                await asyncio.Event().wait()  # like uvicorn waiting for a full socket to drain
            self.chunks += 1

    async def receive(self) -> Message:
        await self.disconnected.wait()
        return {"type": "http.disconnect"}


async def _ticks(closed: list[bool]) -> AsyncIterator[bytes]:
    try:
        while True:
            yield b"data: tick\r\n\r\n"
            await asyncio.sleep(0.01)
    finally:
        closed.append(True)


@contextlib.asynccontextmanager
async def _watching(watch: SendWatch) -> AsyncIterator[None]:
    task = asyncio.create_task(watch.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_blocked_stream_is_ended_and_the_others_keep_going() -> None:
    watch = SendWatch(timeout=0.2, period=0.05)
    stuck, reader = Client(), Client()
    stuck_closed: list[bool] = []
    async with _watching(watch):
        stuck_task = asyncio.ensure_future(
            WatchedEventSourceResponse(_ticks(stuck_closed), watch=watch, ping=0)(
                SCOPE, stuck.receive, stuck.send
            )
        )
        reader_task = asyncio.ensure_future(
            WatchedEventSourceResponse(_ticks([]), watch=watch, ping=0)(
                SCOPE, reader.receive, reader.send
            )
        )
        await asyncio.sleep(0.1)
        assert watch.streams == 2 and stuck.chunks > 0
        stuck.reading = False
        started = asyncio.get_running_loop().time()
        with pytest.raises(SendTimeoutError):
            await asyncio.wait_for(stuck_task, 5)
        waited = asyncio.get_running_loop().time() - started
        assert 0.2 <= waited < 3.0, waited
        assert stuck_closed == [True], "the stream's generator was closed"
        assert watch.streams == 1
        before = reader.chunks
        await asyncio.sleep(0.3)  # longer than the timeout: a reading client stays
        assert not reader_task.done() and reader.chunks > before
        reader.disconnected.set()
        await asyncio.wait_for(reader_task, 5)
    assert watch.streams == 0


def test_the_sse_starlette_internals_used_are_there() -> None:
    """What WatchedEventSourceResponse relies on (its module docstring lists it): a changed
    sse-starlette fails here, not in production."""
    from sse_starlette import EventSourceResponse
    from sse_starlette.sse import ContentStream

    assert ContentStream is not None and issubclass(SendTimeoutError, Exception)
    plain = EventSourceResponse(_ticks([]))
    assert (b"connection", b"keep-alive") in plain.raw_headers  # what the subclass removes
    watched = WatchedEventSourceResponse(_ticks([]), watch=SendWatch())
    assert all(name != b"connection" for name, _ in watched.raw_headers)
