"""What the admin API's read methods return: plain, immutable, JSON-ready records.

Field names follow the attribute names 0.2.1 users read (``subject.id``, ``subject.weight``,
``subject.bucket_id``, ``subject.groups``); the REST layer maps them to 0.2.1's response shapes.
"""

from __future__ import annotations

from datetime import datetime
from types import TracebackType

import msgspec

from flaggery.engine.model import JsonValue
from flaggery.engine.rules import Rule

__all__ = [
    "AbTestGroupRecord",
    "AbTestRecord",
    "BucketRecord",
    "BucketsRecord",
    "FeatureRecord",
    "GroupRecord",
    "PlacementRecord",
    "RolloutRecord",
    "SubjectRecord",
    "shares",
]


def shares(
    buckets: frozenset[int] | set[int], weights: dict[int, int]
) -> tuple[int, float | None, float | None]:
    """(effective weight, weight share, key share) of a rollout or test group holding
    `buckets`, given every bucket's weight."""
    effective = sum(weights[bucket] for bucket in buckets)
    total = sum(weights.values())
    return (
        effective,
        effective / total if total else None,
        len(buckets) / len(weights) if weights else None,
    )


class PlacementRecord(msgspec.Struct, frozen=True):
    """Where ``add_subject(..., like_key=KEY)`` placed a new subject."""

    bucket: int
    """The subject's bucket."""
    key_bucket: int
    """The bucket KEY hashes to: the subject keeps KEY's variants when the two are equal."""
    reason: str | None = None
    """Why the subject went to the lightest bucket instead (the key's bucket was heavier than
    the balance tolerance allows); None when it went to the key's bucket."""

    @property
    def kept(self) -> bool:
        """The subject is in the key's bucket, so it keeps the key's variants."""
        return self.bucket == self.key_bucket


class SubjectRecord(msgspec.Struct, frozen=True):
    """A subject. Also a (sync and async) context manager, as 0.2.1's ``get_subject`` was."""

    id: int
    weight: int
    bucket_id: int
    groups: list[str]

    def __enter__(self) -> SubjectRecord:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None

    async def __aenter__(self) -> SubjectRecord:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None


class FeatureRecord(msgspec.Struct, frozen=True):
    name: str
    variants: list[str]
    default_variant: str | None
    values: dict[str, JsonValue] = {}
    """variant -> value, for the variants given one; the others' value is their name."""
    killed: bool = False
    """The kill switch is on: everyone gets ``__DISABLE__`` (kill_switch, unkill)."""


class RolloutRecord(msgspec.Struct, frozen=True):
    feature: str
    variant: str
    proportion: float
    effective_weight: int
    buckets: list[int]
    weight_share: float | None = None
    """Its share of the registered weight (effective weight / total weight), 0 to 1; None
    while no subject has weight."""
    key_share: float | None = None
    """Its share of hashed targeting keys (its buckets / all buckets), 0 to 1; None while
    there is no bucket. Differs from weight_share when bucket weights are uneven."""
    audience: str | None = None
    """The group the variant goes to (members whose bucket the rollout holds); None: all."""


class GroupRecord(msgspec.Struct, frozen=True):
    name: str
    subjects: list[int]
    overrides: dict[str, str]
    rule: Rule | None = None
    """The targeting rule (constraint sets); None: explicit members only."""


class AbTestGroupRecord(msgspec.Struct, frozen=True):
    name: str
    proportion: float
    variants: dict[str, str]
    buckets: list[int]
    effective_weight: int
    weight_share: float | None = None
    """Its share of the registered weight (effective weight / total weight), 0 to 1; None
    while no subject has weight."""
    key_share: float | None = None
    """Its share of hashed targeting keys (its buckets / all buckets), 0 to 1; None while
    there is no bucket. Differs from weight_share when bucket weights are uneven."""


class AbTestRecord(msgspec.Struct, frozen=True):
    name: str
    start: datetime
    end: datetime
    groups: list[AbTestGroupRecord]
    audience: str | None = None
    """The group the test's variants go to; None: every unit in its buckets."""
    auto_stop: bool = False
    """The test stops itself when its health turns red."""


class BucketRecord(msgspec.Struct, frozen=True):
    id: int
    weight: int


class BucketsRecord(msgspec.Struct, frozen=True):
    total_buckets: int
    total_weight: int
    buckets: list[BucketRecord]
