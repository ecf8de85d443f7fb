"""The garbage collector's first threshold for a serving process.

A stream event wakes every connection's task at once, and each builds a few small objects (its
wait for the next event: a coroutine, a future, generator steps) while the old ones live on
until every connection has been served. With CPython's default threshold (700 allocations),
a fan-out to 1,000 connections runs two or three young collections, which promote those
objects; every twenty events or so they add up to a full collection, which scans every
connection's ~170 long-lived objects (sse-starlette's tasks, cancel scopes and events) and
stops the process for 150-800 ms with 1,000 streams per worker (bench/stream_fanout_bench.py,
measured with gc callbacks). At 20,000 a fan-out to up to several thousand connections per
worker runs no collection at all, so those objects die young; a young collection then scans at
most 20,000 objects (a few milliseconds).
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "tune_for_serving"]

YOUNG_THRESHOLD = 20_000
"""Net allocations of tracked objects between young collections (CPython's default: 700)."""


def tune_for_serving() -> None:
    """Raise the young generation's threshold for this process; the older ones keep theirs."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
