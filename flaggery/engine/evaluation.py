"""What a request for a targeting key gets: its view and who it was bucketed as.

`Snapshot.evaluate` answers with an `Evaluation`: the key, the registered subject it was
bucketed by (None when the key was hashed), and the `ResolvedView` it resolves to. Views are
shared by every key and subject with the same (bucket, groups), so an evaluation costs no
resolution, only finding the view. `BoundedCache` keeps what is worth keeping per snapshot
(keys already evaluated, views first met at request time) without growing past its limit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Generic, NamedTuple, TypeVar

import msgspec

__all__ = [
    "SUBJECT_ATTRIBUTE",
    "TARGETING_KEY",
    "BoundedCache",
    "Evaluation",
    "Placement",
    "ResolvedView",
]

SUBJECT_ATTRIBUTE = "subject"
"""The evaluation-context attribute that names a registered subject to bucket by, unless the
caller names another (setting FLAGGERY_SUBJECT_ATTRIBUTE)."""

TARGETING_KEY = "targetingKey"
"""The evaluation-context attribute that holds the request's targeting key (OpenFeature's
name); rules read the key there (flaggery.engine.units.keyed_context)."""

_Key = TypeVar("_Key")
_Value = TypeVar("_Value")


class ResolvedView(msgspec.Struct, frozen=True):
    """The flags of one (bucket, groups) combination, ready to serve."""

    bucket: int | None
    """The bucket; None only while the database has no bucket (then only defaults apply)."""
    groups: tuple[str, ...]
    """Group names, in the order their overrides apply (later ones win)."""
    flags: Mapping[str, str]
    """Read-only feature -> variant, in feature-name order."""
    json: bytes
    """``{"flags": {...}}`` encoded: byte for byte what the REST API sends."""
    etag: bytes
    """The quoted HTTP entity tag of ``json``."""


class Evaluation(NamedTuple):
    """The answer for one targeting key (and evaluation context)."""

    key: str
    """The targeting key, as given."""
    subject: int | None
    """The registered subject the request was bucketed by: the key itself when it is a
    subject's canonical id, or the subject the context named; None when the key was hashed."""
    view: ResolvedView

    @property
    def hashed(self) -> bool:
        """The key was hashed into its bucket (it names no registered subject)."""
        return self.subject is None

    @property
    def flags(self) -> Mapping[str, str]:
        """feature -> variant (read-only)."""
        return self.view.flags

    @property
    def bucket(self) -> int | None:
        """The view's bucket (`ResolvedView.bucket`)."""
        return self.view.bucket

    @property
    def groups(self) -> tuple[str, ...]:
        """The view's groups (`ResolvedView.groups`)."""
        return self.view.groups


class Placement(NamedTuple):
    """Where a request falls, without its view resolved: an `Evaluation` for adapters that
    answer one feature at a time (OFREP), to which resolving every feature of a view first
    met at request time (rule groups make many) would be wasted work."""

    key: str
    """The targeting key, as given."""
    subject: int | None
    """As `Evaluation.subject`."""
    bucket: int | None
    """The bucket; None only while the database has no bucket."""
    groups: tuple[str, ...]
    """The groups, in the order their overrides apply (as `ResolvedView.groups`)."""

    @property
    def hashed(self) -> bool:
        """The key was hashed into its bucket (it names no registered subject)."""
        return self.subject is None


class BoundedCache(Generic[_Key, _Value]):
    """A memo of at most `limit` entries in two generations, so that a flood of keys seen
    once (visitors' UUIDs) cannot evict the keys requests keep bringing back: per-snapshot
    memoisation whose memory stays bounded whatever keys requests bring.

    New entries go to the young generation. When it holds ``limit // 2`` entries it becomes
    the old one (the previous old one is dropped) and the young one starts empty. A caller
    that misses `get` looks in `old` before computing, and `put`s what it found there back
    into the young generation::

        found = cache.get(key)
        if found is None:
            found = cache.old.get(key)  # seen before the last generation change?
            if found is None:
                found = compute(key)
            cache.put(key, found)

    So a key looked up at least once every ``limit // 2`` new keys is never computed again,
    and a key not seen again is dropped after at most ``limit`` new keys. A caller that skips
    `old` is still right: it recomputes a key once a generation, as the design before this
    one (a dict emptied when full) did.

    Costs: a hit is `get`, the young dict's own ``get`` (a C call, no Python frame); a miss
    adds ``old.get`` (another C call) before the computation; `put` is a length check and a
    store, and every ``limit // 2`` puts one copy of the young generation (amortised: one
    entry copy per put). `get` stays the same object for the cache's life, so callers may
    keep it bound. Safe to share between threads under the GIL: each step is one dict
    operation, and a race at a generation change only loses an entry (it is recomputed)."""

    __slots__ = ("_capacity", "_young", "get", "old", "young")

    def __init__(self, limit: int) -> None:
        """`limit`: at least 2, the most entries kept (both generations together)."""
        if limit < 2:  # two generations of at least one entry
            raise ValueError(f"A BoundedCache keeps at least 2 entries, not {limit}.")
        self._capacity = limit // 2
        self._young: dict[_Key, _Value] = {}
        self.get: Callable[[_Key], _Value | None] = self._young.get
        """The entry of a key in the young generation, or None. TypeError if unhashable."""
        self.young: Mapping[_Key, _Value] = self._young
        """The young generation itself, the same object for the cache's life (read-only):
        ``young[key]`` is a hit with no call at all (KeyError on a miss), for the hottest
        caller (flaggery.engine.readers.key_evaluator)."""
        self.old: dict[_Key, _Value] = {}
        """The old generation (replaced at each generation change: read it as
        ``cache.old``, not through a copy of it)."""

    def __len__(self) -> int:
        """How many entries are kept, both generations (a key in both counts twice)."""
        return len(self._young) + len(self.old)

    def put(self, key: _Key, value: _Value) -> None:
        """Keep ``value`` for ``key`` in the young generation, which becomes the old one
        first when it is full."""
        young = self._young
        if len(young) >= self._capacity:
            self.old = young.copy()
            young.clear()
        young[key] = value
