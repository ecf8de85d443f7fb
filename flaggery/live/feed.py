"""Change feeds: what tells a replica that the database has moved on.

Each backend is one small class with ``start()`` (connect, then the first full load, raising
if that fails) and ``stop()``; the Evaluator picks one by URL scheme.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

__all__ = ["ChangeFeed", "retry_delays"]

FIRST_RETRY_SECONDS = 0.1
# Low enough that a replica resyncs within seconds of the database coming back; a refused
# connection costs the server next to nothing, so frequent retries are cheap.
MAX_RETRY_SECONDS = 2.0


class ChangeFeed(Protocol):
    async def start(self) -> None:
        """Load the replica for the first time and start following changes."""

    async def stop(self) -> None:
        """Stop following; idempotent."""


def retry_delays() -> Iterator[float]:
    """Seconds to wait before each attempt to reach the database again: doubling, capped."""
    delay = FIRST_RETRY_SECONDS
    while True:
        yield delay
        delay = min(delay * 2, MAX_RETRY_SECONDS)
