"""The resolution state as plain data, and the change-log facts that patch it.

The store writes these types (a change-log row's payload is a JSON list of facts) and the
engine reads them, so one definition serves both sides. Each fact carries the *new* state of
one entity, or ``None`` when the entity was deleted: applying a fact is a replacement, never
arithmetic, so replaying a fact twice is harmless.
"""

from __future__ import annotations

import zlib
from array import array
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

import msgspec

from flaggery.engine.rules.constraint import Rule

__all__ = [
    "AbTest",
    "AbTestFact",
    "BucketFact",
    "Change",
    "DeliveryFact",
    "Fact",
    "Feature",
    "FeatureFact",
    "Group",
    "GroupFact",
    "GrownTest",
    "GrowthFact",
    "JsonValue",
    "ReloadFact",
    "Rollout",
    "RolloutFact",
    "State",
    "Subject",
    "SubjectColumns",
    "SubjectFact",
    "SubjectsFact",
    "TestGroup",
    "decode_facts",
    "encode_facts",
]

DISABLE = "__DISABLE__"


class Subject(msgspec.Struct, frozen=True):
    weight: int
    bucket: int
    groups: tuple[str, ...] = ()
    """Names of the groups the subject belongs to, in the order it joined them."""


JsonValue = bool | int | float | str | dict[str, Any]
"""A variant's value: what an OpenFeature client receives (bool, number, string or object)."""


class Feature(msgspec.Struct, frozen=True, omit_defaults=True):
    name: str
    variants: tuple[str, ...]
    default: str | None = None
    values: dict[str, JsonValue] = {}
    """variant -> its value, for the variants given one (the others' value is their name);
    never mutated after construction."""

    killed: bool = False
    """The kill switch is on: every subject and key gets ``__DISABLE__`` of this feature,
    whatever its default, rollout, A/B tests and group overrides say; those are kept, so
    turning the switch off restores exactly what they gave (docs/semantics.md)."""

    def value_of(self, variant: str) -> JsonValue:
        """The variant's value: the one it was given, else its name."""
        return self.values.get(variant, variant)


class Rollout(msgspec.Struct, frozen=True):
    feature: str
    variant: str
    proportion: float
    buckets: frozenset[int]
    audience: str | None = None
    """A group: the rollout's variant goes only to its members (explicit or by rule) whose
    bucket it holds; None: to every unit in its buckets."""


class TestGroup(msgspec.Struct, frozen=True):
    __test__: ClassVar[bool] = False  # a test group of an A/B test, not a pytest test class

    name: str
    proportion: float
    variants: dict[str, str]
    """feature -> variant; never mutated after construction."""
    buckets: frozenset[int]


class AbTest(msgspec.Struct, frozen=True):
    name: str
    start: datetime
    end: datetime
    groups: tuple[TestGroup, ...]
    audience: str | None = None
    """A group: the test's variants go only to its members (explicit or by rule) in the
    test's buckets; None: to every unit in them."""
    auto_stop: bool = False
    """Stop the test when its health turns red (flaggery.live.health_watch); off by default."""

    def is_live(self, now: datetime) -> bool:
        return self.start <= now <= self.end


class Group(msgspec.Struct, frozen=True):
    name: str
    overrides: dict[str, str]
    """feature -> variant; never mutated after construction."""
    rule: Rule | None = None
    """A request whose evaluation context matches the rule is in the group, besides the
    subjects joined explicitly (flaggery.engine.rules); None: explicit members only."""


class SubjectFact(msgspec.Struct, frozen=True, tag="subject", omit_defaults=True):
    id: int
    subject: Subject | None
    left: tuple[str, ...] = ()
    """The groups the subject left in this write (removed from them, or removed itself), so
    history filtered by one of them sees the removal."""


class SubjectsFact(msgspec.Struct, frozen=True, tag="subjects"):
    """New subjects added in one bulk write (`add_subjects`), each in no group, as three
    parallel columns: ids, weights and buckets, each little-endian 8-byte integers compressed
    with zlib (level 1).

    50,000 `SubjectFact`s cost 0.1 s to make and 0.45 s to apply to a snapshot of two million
    subjects, one at a time; the columns are made and applied with C-level passes. In JSON
    they are base64: an import batch of 50,000 (ascending ids, weights 1 to 10, 100 buckets)
    is about 280 KB, where the raw columns would be 1.6 MB (the change-log row is written by
    PostgreSQL in the batch's transaction, and read by every replica). Applying it is an
    insertion of ids the snapshot does not hold, so a replica that holds one of them must
    reload.
    """

    ids: bytes
    weights: bytes
    buckets: bytes

    @classmethod
    def of(cls, ids: array[int], weights: array[int], buckets: array[int]) -> SubjectsFact:
        """The fact of parallel typecode "q" columns."""
        return cls(_packed(ids), _packed(weights), _packed(buckets))

    def columns(self) -> tuple[array[int], array[int], array[int]]:
        """ids, weights and buckets as typecode "q" arrays, in the order added. Raises
        ValueError (zlib.error is one) for columns that are not that, or of unequal lengths."""
        columns = _unpacked(self.ids), _unpacked(self.weights), _unpacked(self.buckets)
        if len({len(column) for column in columns}) != 1:
            raise ValueError("A subjects fact's columns differ in length.")
        return columns

    def __len__(self) -> int:
        return len(_unpacked(self.ids))


_LITTLE = array("q", [1]).tobytes()[0] == 1  # this host stores integers little-endian


def _packed(column: array[int]) -> bytes:
    if column.typecode != "q":
        column = array("q", column)
    if not _LITTLE:
        column = array("q", column)
        column.byteswap()
    return zlib.compress(column.tobytes(), 1)


def _unpacked(data: bytes) -> array[int]:
    column = array("q")
    column.frombytes(zlib.decompress(data))
    if not _LITTLE:
        column.byteswap()
    return column


class BucketFact(msgspec.Struct, frozen=True, tag="bucket"):
    """A bucket was created (buckets are never deleted). Rows written before `GrowthFact`
    existed log growth this way; they stay readable."""

    id: int


class FeatureFact(msgspec.Struct, frozen=True, tag="feature"):
    name: str
    feature: Feature | None


class RolloutFact(msgspec.Struct, frozen=True, tag="rollout"):
    feature: str
    rollout: Rollout | None


class AbTestFact(msgspec.Struct, frozen=True, tag="abtest", omit_defaults=True):
    name: str
    test: AbTest | None
    removed_features: tuple[str, ...] = ()
    """For a removed test (``test`` None): the features it set, so history filtered by one
    of them sees the removal."""


class GroupFact(msgspec.Struct, frozen=True, tag="group", omit_defaults=True):
    name: str
    group: Group | None
    removed_overrides: tuple[str, ...] = ()
    """The features whose override of this group the write removed (one override, or all of
    them with the group), so history filtered by one of them sees the removal."""


class GrownTest(msgspec.Struct, frozen=True):
    """What one A/B test took of new buckets: group name -> the new bucket ids it got."""

    features: tuple[str, ...]
    """The features the test sets (so history filters by feature without the whole test)."""
    groups: dict[str, list[int]]


class GrowthFact(msgspec.Struct, frozen=True, tag="growth"):
    """Buckets ``first`` to ``last`` (inclusive) were created, and each rollout and A/B test
    took its share of them: only the new bucket ids each took, never whole bucket sets.

    Logging every grown rollout's and test's full bucket set made adding 100 buckets to 1,000
    write a change-log row of about 130 KB; this one is about 7 bytes per bucket taken. Applying
    it adds the ids to the named rollouts' and groups' sets (a union: replaying it is harmless).
    """

    first: int
    last: int
    rollouts: dict[str, list[int]]
    """feature -> the new buckets its rollout took (rollouts that took none are left out)."""
    abtests: dict[str, GrownTest]


class DeliveryFact(msgspec.Struct, frozen=True, tag="delivery", omit_defaults=True):
    """A scheduled change or a release plan was created, changed or applied (flaggery.store
    schedules and plans). It changes no resolution by itself: the facts of the write it
    made, if any, are in the same change-log row.
    """

    kind: str
    """"schedule" or "plan"."""
    name: str
    """The schedule's name, or the plan's feature."""
    event: str
    """What happened: created, edited, cancelled, applied, failed; for a plan also advanced,
    paused, resumed, rolled_back, skipped, done, removed."""
    features: tuple[str, ...] = ()
    """The features it is about (history filters by them)."""
    detail: str = ""
    """In words: the steps applied, the step reached, why it paused."""
    late_seconds: float | None = None
    """How long after its instant a step was applied (None: not an application)."""


class ReloadFact(msgspec.Struct, frozen=True, tag="reload"):
    """The write changed too much to log fact by fact (`facts` facts): reload fully.

    Keeps every change-log row small: a bulk add of a million subjects would otherwise be one
    row of about 80 MB, read by every replica.
    """

    facts: int


Fact = (
    SubjectFact
    | SubjectsFact
    | BucketFact
    | FeatureFact
    | RolloutFact
    | AbTestFact
    | GroupFact
    | GrowthFact
    | DeliveryFact
    | ReloadFact
)


class Change(msgspec.Struct, frozen=True):
    """One change-log row: everything one write transaction changed."""

    revision: int
    operation: str
    facts: tuple[Fact, ...]


class SubjectColumns(msgspec.Struct, frozen=True):
    """Every subject as three parallel typed arrays, sorted by id.

    A million subjects as Python objects would cost hundreds of megabytes; as columns they
    cost 24 bytes each, and the loader can fill them while it streams rows.
    """

    ids: array[int]  # typecode "q"
    weights: array[int]  # typecode "q"
    buckets: array[int]  # typecode "q"


class State(msgspec.Struct, frozen=True):
    """Everything resolution needs, as of one revision."""

    revision: int
    buckets: tuple[int, ...]
    subjects: SubjectColumns
    memberships: Mapping[int, tuple[str, ...]]
    """subject id -> its groups in join order; only subjects in at least one group."""
    features: Mapping[str, Feature]
    rollouts: Mapping[str, Rollout]
    """feature name -> its rollout."""
    abtests: Mapping[str, AbTest]
    groups: Mapping[str, Group]
    key_salt: bytes
    """The database's salt for hashing targeting keys (flaggery.engine.targeting), given at
    migration and never changed."""


_facts_encoder = msgspec.json.Encoder()
_facts_decoder = msgspec.json.Decoder(tuple[Fact, ...])


def encode_facts(facts: tuple[Fact, ...] | list[Fact]) -> bytes:
    return _facts_encoder.encode(facts)


def decode_facts(payload: bytes | str) -> tuple[Fact, ...]:
    return _facts_decoder.decode(payload)
