"""An edge and the remote client read their upstream's event stream within bounds (issue 18,
item 4d): a line or an event beyond MAX_LINE_BYTES / MAX_EVENT_BYTES breaks the stream (the
reader reconnects) instead of growing a buffer for as long as the upstream sends, and the edge
says it is stale meanwhile. The one line reader is flaggery.live.sse_lines."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from flaggery.client import AsyncFlaggeryClient
from flaggery.engine.model import Change, Subject, SubjectFact
from flaggery.engine.state_codec import state_chunks
from flaggery.live import sse_lines
from flaggery.live.evaluator import Evaluator
from flaggery.live.sse_lines import EventTooLarge, SseParser, bounded_lines
from flaggery.stream import events
from tests.engine.strategies import make_state

LIMIT = 64 * 1024


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _lines(*parts: bytes, limit: int | None = None) -> list[str]:
    return [line async for line in bounded_lines(_chunks(*parts), limit)]


@pytest.mark.parametrize(
    "parts",
    [
        (b"a\r\nb\r\n\r\n",),
        (b"a\r", b"\nb\r\n", b"\r\n"),  # CRLF split across reads
        (b"a\rb\r\r",),  # CR alone ends a line
        (b"a\nb\n\n",),
        (b"a", b"\nb", b"\n", b"\n"),
    ],
)
async def test_lines_end_at_crlf_lf_or_cr(parts: tuple[bytes, ...]) -> None:
    assert await _lines(*parts) == ["a", "b", ""]


async def test_a_line_beyond_the_limit_breaks_the_stream() -> None:
    assert await _lines(b"x" * LIMIT + b"\n", limit=LIMIT) == ["x" * LIMIT]
    with pytest.raises(EventTooLarge):
        await _lines(b"x" * (LIMIT // 2), b"x" * (LIMIT // 2 + 1), limit=LIMIT)


def test_an_event_beyond_the_limit_breaks_the_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sse_lines, "MAX_EVENT_BYTES", 100)
    parser = SseParser()
    parser.feed("data: " + "x" * 60)
    with pytest.raises(EventTooLarge):
        parser.feed("data: " + "x" * 60)


def test_the_server_sends_a_reload_rather_than_an_oversize_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(events, "MAX_EVENT_BYTES", 1000)
    change = Change(7, "add_subjects", tuple(SubjectFact(n, Subject(1, 1)) for n in range(100)))
    event = events.change_event(change)
    assert (event.kind, event.revision) == ("reload", 7) and "too large" in event.data


ENDLESS = 64 * 1024 * 1024  # more than socket buffers hold: only a reader takes it all


class _EndlessLineUpstream:
    """A fake flaggery server: a real snapshot, then a stream that sends one line of ENDLESS
    bytes; `left_early` counts the streams its reader closed before the end."""

    def __init__(self) -> None:
        self.left_early = 0
        self.snapshot = b"".join(bytes(c) for c in state_chunks(make_state(buckets=[1])))

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        if request.startswith(b"GET /v1/snapshot"):
            head = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\nx-flaggery-revision: 1\r\n\r\n"
            writer.write(head % len(self.snapshot) + self.snapshot)
        else:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\ndata: ")
            try:
                for _ in range(ENDLESS // 65536):
                    writer.write(b"x" * 65536)
                    await writer.drain()
            except ConnectionError:
                self.left_early += 1
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()


async def test_an_edge_leaves_an_endless_line_and_says_it_is_stale(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sse_lines, "MAX_LINE_BYTES", LIMIT)
    upstream = _EndlessLineUpstream()
    server = await asyncio.start_server(upstream.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, Evaluator.from_upstream(f"http://127.0.0.1:{port}") as edge:
        for _ in range(200):
            if edge.stale and upstream.left_early:
                break
            await asyncio.sleep(0.05)
        assert edge.stale  # /readyz says stale: true
        assert upstream.left_early  # it hung up instead of reading the line to its end


async def test_the_remote_client_leaves_an_endless_line_and_keeps_following(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sse_lines, "MAX_LINE_BYTES", LIMIT)
    upstream = _EndlessLineUpstream()
    server = await asyncio.start_server(upstream.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, AsyncFlaggeryClient(f"http://127.0.0.1:{port}") as client:
        for _ in range(200):
            if upstream.left_early:
                break
            await asyncio.sleep(0.05)
        assert upstream.left_early  # it hung up instead of reading the line to its end
        assert client._task is not None and not client._task.done()  # and follows on
