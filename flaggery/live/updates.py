"""`Updates`: an Evaluator's changes as an async iterator, for consumers that await them.

    with evaluator.updates() as updates:
        async for update in updates:
            ...  # update.snapshot, update.changes, update.stale

A consumer slower than the source never falls behind: an update that arrives before the
previous one was taken replaces it, so at most one is held and the consumer always gets the
latest state (compare snapshots to learn what changed in between). Consumers that need every
change-log entry subscribe a callback instead (`Evaluator.subscribe`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType

from flaggery.store.subscribers import Subscribers, Update

__all__ = ["Updates"]


class Updates:
    """The updates published while the ``with`` block is open; iteration ends when it closes."""

    def __init__(self, subscribers: Subscribers) -> None:
        self._subscribers = subscribers
        self._latest: Update | None = None
        self._arrived = asyncio.Event()
        self._remove: Callable[[], None] | None = None
        self._closed = False

    def __enter__(self) -> Updates:
        self._remove = self._subscribers.add(self._offer)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Unsubscribe; an iteration waiting for the next update ends. Idempotent."""
        if self._remove is not None:
            self._remove()
        self._closed = True
        self._arrived.set()

    def __aiter__(self) -> Updates:
        return self

    async def __anext__(self) -> Update:
        if self._remove is None:
            raise RuntimeError("Enter `with evaluator.updates() as updates:` before iterating.")
        while self._latest is None:
            if self._closed:
                raise StopAsyncIteration
            self._arrived.clear()
            await self._arrived.wait()
        update, self._latest = self._latest, None
        return update

    def _offer(self, update: Update) -> None:
        self._latest = update
        self._arrived.set()
