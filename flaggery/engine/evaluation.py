"""What a request for a targeting key gets: its view and who it was bucketed as.

`Snapshot.evaluate` answers with an `Evaluation`: the key, the registered subject it was
bucketed by (None when the key was hashed), and the `ResolvedView` it resolves to. Views are
shared by every key and subject with the same (bucket, groups), so an evaluation costs no
resolution, only finding the view. `BoundedCache` keeps what is worth keeping per snapshot
(keys already evaluated, views first met at request time) without growing past its limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Generic, NamedTuple, TypeVar

import msgspec

__all__ = ["SUBJECT_ATTRIBUTE", "BoundedCache", "Evaluation", "Placement", "ResolvedView"]

SUBJECT_ATTRIBUTE = "subject"
"""The evaluation-context attribute that names a registered subject to bucket by, unless the
caller names another (setting FLAGGERY_SUBJECT_ATTRIBUTE)."""

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
    """A dict emptied whenever it reaches `limit` entries: per-snapshot memoisation whose
    memory stays bounded whatever keys requests bring. Emptying, rather than dropping the
    oldest entry, keeps a store to a plain dict assignment: a stream of keys never seen
    (visitors' UUIDs) pays no bookkeeping, and a key seen again is recomputed at most once
    per `limit` new keys. Safe to share between threads (each step is one dict operation)."""

    __slots__ = ("_entries", "_limit", "get")

    def __init__(self, limit: int) -> None:
        self._entries: dict[_Key, _Value] = {}
        self._limit = limit
        self.get = self._entries.get
        """The entry of a key, or None."""

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, key: _Key, value: _Value) -> None:
        """Keep ``value`` for ``key``, emptying the cache first when it is full."""
        entries = self._entries
        if len(entries) >= self._limit:
            entries.clear()
        entries[key] = value
