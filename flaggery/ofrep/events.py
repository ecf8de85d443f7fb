"""OFREP's event stream: ``refetchEvaluation`` over Server-Sent Events (OFREP ADR-0008).

One watcher per process follows the evaluator's updates (`Evaluator.updates`) and, whenever a
new snapshot is swapped in (a write anywhere, or an A/B test starting or ending), puts one
event in every connected client's queue. Each client is an async generator served by
sse-starlette (keep-alive pings, disconnect and shutdown handling). Queues are bounded: a
client that does not read is dropped rather than buffered without end, and its EventSource
reconnects and refetches; a client whose send stays blocked (it stopped reading and its socket
filled) is disconnected by the process's `SendWatch`, the change stream's, which also bounds
how many streams of every kind the process serves (beyond it: 503 with Retry-After).

The stream carries no flag data, only that the configuration moved on (``etag`` is the
revision, ``lastModified`` Unix seconds), so clients refetch the bulk evaluation and get a 304
if their own flags did not change. Like every OFREP route it needs a client token when client
tokens are required (the role table, docs/security.md): nothing in it is secret, but each
connection is held for as long as the client likes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import msgspec
from sse_starlette import ServerSentEvent
from starlette.types import Receive, Scope, Send

from flaggery.engine import Snapshot
from flaggery.errors import TooManyStreams
from flaggery.live.evaluator import Evaluator
from flaggery.live.tasks import cancel_and_wait
from flaggery.stream.send_watch import SendWatch, WatchedEventSourceResponse

__all__ = ["CLIENT_QUEUE_SIZE", "EventBroadcast"]

CLIENT_QUEUE_SIZE = 16
PING_SECONDS = 15


class _Refetch(msgspec.Struct, frozen=True):
    etag: str
    lastModified: int
    type: str = "refetchEvaluation"


_encoder = msgspec.json.Encoder()
_DROPPED = ServerSentEvent(comment="dropped: too slow")


class EventBroadcast:
    """Connected clients and the watcher that feeds them."""

    def __init__(self) -> None:
        self._clients: set[asyncio.Queue[ServerSentEvent]] = set()
        self._send_watch: SendWatch | None = None

    @property
    def client_count(self) -> int:
        return len(self._clients)

    @contextlib.asynccontextmanager
    async def running(self, evaluator: Evaluator, watch: SendWatch) -> AsyncIterator[None]:
        """Watch `evaluator` for as long as the context lasts (the app's lifespan); ``watch``
        is the process's stream watch (its owner runs it)."""
        self._send_watch = watch
        task = asyncio.create_task(self._watch(evaluator), name="flaggery-ofrep-events")
        try:
            yield
        finally:
            await cancel_and_wait(task)

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Stream events to one client until it disconnects, is dropped, or the server stops.
        Raises TooManyStreams (nothing sent) when the process serves as many as it may."""
        if self._send_watch is None:
            raise TooManyStreams("The server is not started yet.", retry_after=1)
        response = WatchedEventSourceResponse(
            self._events(),
            watch=self._send_watch,
            ping=PING_SECONDS,
            headers={"Cache-Control": "no-store"},
        )
        await response(scope, receive, send)

    def publish(self, snapshot: Snapshot) -> None:
        event = ServerSentEvent(
            data=_encoder.encode(_Refetch(str(snapshot.revision), int(time.time()))).decode(),
            event="message",
            id=str(snapshot.revision),
        )
        for queue in list(self._clients):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                self._drop(queue)

    def _drop(self, queue: asyncio.Queue[ServerSentEvent]) -> None:
        self._clients.discard(queue)
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(_DROPPED)

    async def _events(self) -> AsyncIterator[ServerSentEvent]:
        queue: asyncio.Queue[ServerSentEvent] = asyncio.Queue(CLIENT_QUEUE_SIZE)
        self._clients.add(queue)
        try:
            while True:
                event = await queue.get()
                yield event
                if event is _DROPPED:
                    return
        finally:
            self._clients.discard(queue)

    async def _watch(self, evaluator: Evaluator) -> None:
        with evaluator.updates() as updates:
            last = evaluator.snapshot if evaluator.revision >= 0 else None
            async for update in updates:
                if last is not None and update.snapshot is not last:
                    self.publish(update.snapshot)
                last = update.snapshot
