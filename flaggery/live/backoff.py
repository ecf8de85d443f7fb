"""The one reconnect schedule: exponential backoff with jitter, for every loop that waits for
the database to come back (the LISTEN feed, the evaluator's first connection, the app's first
snapshot).

Without jitter, every worker of every replica that lost PostgreSQL at the same moment retries
at the same moments, in lock step, for as long as the outage lasts. "Equal jitter" (half the
ceiling fixed, half random) spreads them over the upper half of each step and, unlike full
jitter, never retries immediately:

    attempt n waits uniform(c_n / 2, c_n) seconds, where c_n = min(cap, first * 2**n)
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from flaggery.errors import UpstreamRefused
from flaggery.store.replica import SnapshotBuildFailed

__all__ = [
    "RECONNECT",
    "REFUSED",
    "STREAM_WORKED_SECONDS",
    "Backoff",
    "lasting",
    "stream_worked",
]


@dataclass(frozen=True)
class Backoff:
    first: float
    """Ceiling of the first wait, in seconds."""
    cap: float
    """Largest ceiling, in seconds: no wait is longer."""

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """Seconds to wait before each attempt, without end. Each call starts over, with its
        own random source (seeded from the OS, or ``rng`` for tests)."""
        rng = random.Random() if rng is None else rng
        ceiling = self.first
        while True:
            yield rng.uniform(ceiling / 2, ceiling)
            ceiling = min(ceiling * 2, self.cap)


RECONNECT = Backoff(first=0.1, cap=2.0)
"""A replica resyncs within about two seconds of the database coming back; a refused
connection costs the server next to nothing, so a short cap is cheap."""

STREAM_WORKED_SECONDS = 2.0
"""How long a stream that brought no event must have stayed open to count as working."""


def stream_worked(events: int, open_seconds: float | None) -> bool:
    """Whether an event stream that ended worked, so the backoff may start over: it brought
    ``events``, or it sent something (``open_seconds`` since its first line; None: nothing)
    and stayed open STREAM_WORKED_SECONDS. A proxy that answers 200 and closes at once, even
    after the server's opening comment, did not: its retries keep backing off."""
    return events > 0 or (open_seconds is not None and open_seconds >= STREAM_WORKED_SECONDS)


def lasting(error: BaseException) -> bool:
    """Whether only a change on the source's side ends ``error``, so it is retried on the
    REFUSED schedule: a refused token, or a state that does not build (retrying it at once
    would download or load it all again for nothing)."""
    return isinstance(error, UpstreamRefused | SnapshotBuildFailed)


REFUSED = Backoff(first=5.0, cap=30.0)
"""After a refused token (an edge's upstream answered 401/403): only a change of tokens on
either side helps, so retry slowly, but keep retrying, since tokens are rotated while the
processes run (a new upstream token file, a restarted upstream)."""
