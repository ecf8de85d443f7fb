"""Failed authentication attempts, limited per client address.

Each address has a bucket of FAILURE_BURST failures that refills one every REFILL_SECONDS; an
address whose bucket is empty is refused (429 with Retry-After) before its credential is even
looked at, so guessing a secret costs REFILL_SECONDS a guess after the first few. Requests that
present no credential, or a right one, cost nothing here. One table per process (a server with
N workers allows N times the rate), at most MAX_ADDRESSES addresses (the oldest forgotten first).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["FAILURE_BURST", "MAX_ADDRESSES", "REFILL_SECONDS", "FailedAttempts"]

FAILURE_BURST = 10
"""Failures an address may make at once (a mistyped token, a rotated secret)."""
REFILL_SECONDS = 6.0
"""Then one more failure every this many seconds: 10 a minute."""
MAX_ADDRESSES = 10_000


class FailedAttempts:
    """The failures of each client address; ``clock`` is monotonic seconds (tests move it)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # address -> (failures left, when that was computed)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def retry_after(self, address: str) -> int | None:
        """Whole seconds until ``address`` may try again, or None if it may now."""
        bucket = self._buckets.get(address)
        if bucket is None:
            return None
        left = self._left(bucket)
        if left >= 1.0:
            return None
        return max(1, math.ceil((1.0 - left) * REFILL_SECONDS))

    def failed(self, address: str) -> None:
        """Count one failed attempt of ``address``."""
        bucket = self._buckets.pop(address, None)
        left = FAILURE_BURST if bucket is None else self._left(bucket)
        self._buckets[address] = (left - 1.0, self._clock())
        if len(self._buckets) > MAX_ADDRESSES:
            self._buckets.popitem(last=False)

    def _left(self, bucket: tuple[float, float]) -> float:
        left, since = bucket
        return min(float(FAILURE_BURST), left + (self._clock() - since) / REFILL_SECONDS)
