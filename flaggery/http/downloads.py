"""Snapshot downloads (GET /v1/snapshot) that cost one copy of the state, however many run,
and end when their client stops reading.

Every download in progress of the same snapshot shares one `State` (gathered once, off the
event loop); it is dropped when the last of them ends. Each download is sent in PIECE_BYTES
pieces, so a client that reads nothing holds at most a piece and the transport's buffer, not
a copy of the columns; a piece whose send stays blocked STALL_SECONDS ends the download (the
connection is closed: the client retries, as an edge does).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from flaggery.engine import Snapshot
from flaggery.engine.model import State
from flaggery.engine.state_codec import state_chunks

__all__ = ["PIECE_BYTES", "STALL_SECONDS", "SharedStates", "SnapshotDownload"]

log = logging.getLogger(__name__)

PIECE_BYTES = 64 * 1024
STALL_SECONDS = 30.0
"""How long one piece's send may stay blocked (the client reads nothing) before the download
is cut."""


@dataclass
class _Shared:
    snapshot: Snapshot
    state: State
    downloads: int = 0


class SharedStates:
    """The State of each snapshot being downloaded, while any download of it runs."""

    def __init__(self) -> None:
        self._shared: dict[int, _Shared] = {}
        self._gathering = asyncio.Lock()

    @property
    def held(self) -> int:
        """How many states are held now (one per snapshot being downloaded)."""
        return len(self._shared)

    @contextlib.asynccontextmanager
    async def borrow(self, snapshot: Snapshot) -> AsyncIterator[State]:
        """``snapshot``'s State for the block's duration, gathered by the first borrower."""
        key = id(snapshot)
        async with self._gathering:
            shared = self._shared.get(key)
            if shared is None or shared.snapshot is not snapshot:
                # A million subjects' columns take a few hundred ms: not on the loop.
                state = await asyncio.to_thread(snapshot.to_state)
                shared = self._shared[key] = _Shared(snapshot, state)
            shared.downloads += 1
        try:
            yield shared.state
        finally:
            shared.downloads -= 1
            if shared.downloads == 0 and self._shared.get(key) is shared:
                del self._shared[key]


class SnapshotDownload(Response):
    """The response of one download: ``headers`` then the portable bytes of ``snapshot``'s
    state, borrowed from ``states``."""

    def __init__(
        self,
        states: SharedStates,
        snapshot: Snapshot,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        self.status_code = 200
        self.background = None
        self.raw_headers = headers
        self._states = states
        self._snapshot = snapshot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with self._states.borrow(self._snapshot) as state:
            start = {"type": "http.response.start", "status": 200, "headers": self.raw_headers}
            await send(start)
            for piece in _pieces(state_chunks(state)):
                try:
                    async with asyncio.timeout(STALL_SECONDS):
                        await send({"type": "http.response.body", "body": piece, "more_body": True})
                except TimeoutError:
                    log.warning(
                        "Cut a snapshot download of revision %s: its client read nothing for "
                        "%g s", state.revision, STALL_SECONDS,
                    )  # fmt: skip
                    return  # the server closes the connection: the response is incomplete
            await send({"type": "http.response.body", "body": b"", "more_body": False})


def _pieces(chunks: Iterator[bytes | memoryview]) -> Iterator[memoryview]:
    for chunk in chunks:
        view = memoryview(chunk).cast("B")
        for start in range(0, len(view), PIECE_BYTES):
            yield view[start : start + PIECE_BYTES]
