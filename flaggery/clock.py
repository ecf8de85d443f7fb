"""Time as a parameter: the clock type every layer accepts, and the real one.

It sits at the bottom of the layers with ``errors`` so the store, the live feeds and the HTTP
app can all take a clock without importing each other; the engine takes plain datetimes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["Clock", "utc_now"]

Clock = Callable[[], datetime]
"""A function returning the current instant as an aware datetime (tests pass a fake one)."""


def utc_now() -> datetime:
    """The current instant, aware, in UTC."""
    return datetime.now(UTC)
