"""Change feeds: what tells a replica that the database has moved on.

Each backend is one small class with ``start()`` (connect, then the first full load, raising
if that fails) and ``stop()``; the Evaluator picks one by URL scheme.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["ChangeFeed"]


class ChangeFeed(Protocol):
    async def start(self) -> None:
        """Load the replica for the first time and start following changes."""

    async def stop(self) -> None:
        """Stop following; idempotent."""
