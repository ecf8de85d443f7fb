"""Per-feature and per-test orderings of the buckets, from a stable hash of the name.

Two rollouts (or two A/B tests) that walked the buckets in one shared order (0.2.1 walked them
by id) would always pick the same buckets, so the same subjects would get every new feature
first and the groups of different tests would coincide. Keying each bucket by a hash of the
feature's or test's name and the bucket id gives every name its own order, independent of the
others, and the same on every process and after every restart (blake2b, not ``hash()``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

__all__ = [
    "abtest_salt",
    "bucket_key",
    "keyed_order",
    "rollout_order",
    "rollout_salt",
    "unit_interval",
    "unit_intervals",
]

_KEY_BYTES = 8
_KEY_RANGE = float(2 ** (8 * _KEY_BYTES))


def rollout_salt(feature: str) -> str:
    """The name a feature's rollout orders its buckets by."""
    return f"rollout\x1f{feature}"


def abtest_salt(test: str) -> str:
    """The name an A/B test orders its buckets by."""
    return f"abtest\x1f{test}"


def bucket_key(salt: str, bucket: int) -> int:
    """A 64-bit pseudo-random key of `bucket` in the order named `salt`: blake2b of
    ``salt, 0x1f, the id in decimal``. About 1 µs."""
    return _keyer(salt)(bucket)


def unit_interval(salt: str, bucket: int) -> float:
    """`bucket_key` scaled to [0, 1): a stable stand-in for a random draw per bucket."""
    return bucket_key(salt, bucket) / _KEY_RANGE


def unit_intervals(salt: str, buckets: Iterable[int]) -> list[float]:
    """`unit_interval` of each bucket, in order (the salt is hashed once: about 0.4 µs each)."""
    key = _keyer(salt)
    return [key(bucket) / _KEY_RANGE for bucket in buckets]


def keyed_order(salt: str, buckets: Iterable[int]) -> list[int]:
    """`buckets` sorted by their key in the order named `salt`."""
    return sorted(buckets, key=_keyer(salt))


def _keyer(salt: str) -> Callable[[int], int]:
    """`bucket_key` for one salt: the hash state after the salt is computed once and copied
    per bucket (the digest is the same as hashing the whole text, at a third of the cost)."""
    prefix = hashlib.blake2b(f"{salt}\x1f".encode(), digest_size=_KEY_BYTES)

    def key(bucket: int) -> int:
        state = prefix.copy()
        state.update(str(bucket).encode())
        return int.from_bytes(state.digest(), "big")

    return key


def rollout_order(
    feature: str, buckets: Iterable[int], joined: Sequence[int], declined: Sequence[int]
) -> list[int]:
    """The order a feature's rollout is raised along (and lowered against).

    ``joined`` and ``declined`` are the buckets created while the rollout existed, split by
    whether it took them (ids grow, so they give the creation order). The order is: joined
    buckets, newest first; then every other bucket by its key; then declined buckets, oldest
    first. A rollout then always holds a prefix of its order: growth puts what it takes in
    front of the prefix and what it leaves behind the end, and raising or lowering only moves
    the prefix's end.
    """
    grown = set(joined) | set(declined)
    middle = keyed_order(rollout_salt(feature), (b for b in buckets if b not in grown))
    return [*sorted(joined, reverse=True), *middle, *sorted(declined)]
