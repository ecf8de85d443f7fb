"""THE mapping from the engine's explanation to an OpenFeature flag evaluation: reason,
variant, value and metadata. Shared by the two adapters, OFREP (`flaggery.ofrep`, which encodes
it) and the in-process OpenFeature provider (`flaggery.openfeature`); neither imports the other.

The engine says which variant each feature resolved to and which resolution step chose it
(`flaggery.engine.FeatureExplanation`); this module only translates, in one table:

| engine                                  | reason            | value           |
|-----------------------------------------|-------------------|-----------------|
| the disabling variant ``__DISABLE__``   | DISABLED          | omitted         |
| (also every killed feature)             |                   |                 |
| default, nothing targets the feature    | STATIC            | variant's value |
| default, something targets the feature  | DEFAULT           | variant's value |
| default, no bucket exists yet           | DEFAULT           | variant's value |
| rollout                                 | SPLIT             | variant's value |
| A/B test group                          | SPLIT             | variant's value |
| group override                          | TARGETING_MATCH   | variant's value |
| no variant at all for the subject       | DEFAULT           | omitted         |

An omitted value means "use the caller's code default". ``variant`` is always present (the
empty string when there is none), because the Python OFREP provider requires it. A hashed
targeting key gets the reasons a subject in its bucket with no group gets. Metadata says where
the answer came from: ``subjectKnown`` (bucketed by a registered subject) and ``keyHashed``
(the key was hashed into its bucket), ``bucket``, ``source``, and per source ``proportion``,
``abTest`` and ``abTestGroup``, or ``group``.

An answer from a snapshot that may lag its source (the database unreachable, an edge behind or
cut off from its upstream, a newer state that does not build) says so, as flagd does: reason
``STALE`` (OpenFeature: "the resolved value is non-authoritative or possibly out of date"),
with the reason it would have had in ``resolutionReason`` (`as_stale`).
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from flaggery.engine import Config, Evaluation, FeatureExplanation, Snapshot
from flaggery.engine.evaluation import Placement
from flaggery.engine.model import Feature, JsonValue

__all__ = [
    "REASONS",
    "STALE_REASON",
    "AnswerKey",
    "FlagEvaluation",
    "Metadata",
    "UnitContext",
    "UnitEvaluations",
    "answer_key",
    "as_stale",
    "evaluate",
    "evaluate_unit",
    "targeted_features",
    "with_revision",
]

Metadata = dict[str, str | int | float | bool]
"""OpenFeature flag metadata: values are strings, numbers or booleans only."""

STALE_REASON = "STALE"
"""OpenFeature's reason for a non-authoritative, possibly out-of-date answer."""
AnswerKey = tuple[int | None, tuple[str, ...], bool]
"""What a unit's answers depend on in one snapshot: bucket, groups, registered or hashed."""


class FlagEvaluation(msgspec.Struct, frozen=True, omit_defaults=True):
    """One flag's evaluation, in OFREP's field names (OFREP sends it as it is)."""

    key: str
    reason: str
    variant: str
    metadata: Metadata
    value: JsonValue | msgspec.UnsetType = msgspec.UNSET
    """Unset: the caller's code default applies (disabled, or no variant for the subject)."""


REASONS: Mapping[str, str] = {
    "default": "DEFAULT",  # STATIC instead when nothing targets the feature (see evaluate)
    "rollout": "SPLIT",
    "abtest": "SPLIT",
    "override": "TARGETING_MATCH",
    "killed": "DISABLED",  # the variant is __DISABLE__: answered as disabled (see evaluate)
}
"""Explanation source -> OpenFeature reason."""

# The explanation's optional fields, by the metadata key OFREP clients see.
_SOURCE_DETAILS = (
    ("proportion", "proportion"),
    ("test", "abTest"),
    ("test_group", "abTestGroup"),
    ("group", "group"),
)


class UnitContext(msgspec.Struct, frozen=True):
    """What every flag of one unit shares: bucketed by a registered subject or hashed, and its
    bucket (None only while no bucket exists)."""

    known: bool
    bucket: int | None
    targeted: frozenset[str]
    """Features that some rollout, A/B test or group override sets (see `targeted_features`)."""


def evaluate(feature: Feature, why: FeatureExplanation | None, unit: UnitContext) -> FlagEvaluation:
    """One feature's OFREP evaluation for a unit, from the engine's explanation (None when
    the unit has no variant of this feature)."""
    metadata: Metadata = {"subjectKnown": unit.known, "keyHashed": not unit.known}
    if unit.bucket is not None:
        metadata["bucket"] = unit.bucket
    if why is None:
        return FlagEvaluation(feature.name, "DEFAULT", "", metadata)
    metadata["source"] = why.source
    for field, key in _SOURCE_DETAILS:
        detail = getattr(why, field)
        if detail is not None:
            metadata[key] = detail
    if why.disabled:
        return FlagEvaluation(feature.name, "DISABLED", why.variant, metadata)
    reason = REASONS[why.source]
    if why.source == "default" and unit.bucket is not None and feature.name not in unit.targeted:
        reason = "STATIC"
    return FlagEvaluation(
        feature.name, reason, why.variant, metadata, feature.value_of(why.variant)
    )


def targeted_features(config: Config) -> frozenset[str]:
    """Features some rollout, A/B test (live or not) or group override sets: for those, a
    subject that gets the default could have got something else."""
    tested = {
        feature for test in config.abtests.values() for group in test.groups
        for feature in group.variants
    }  # fmt: skip
    overridden = {feature for group in config.groups.values() for feature in group.overrides}
    return frozenset(config.rollouts) | tested | overridden


def answer_key(evaluation: Evaluation | Placement) -> AnswerKey:
    """The key under which a snapshot's answers for `evaluation` can be shared."""
    return evaluation.bucket, evaluation.groups, evaluation.subject is None


def evaluate_unit(
    snapshot: Snapshot, evaluation: Evaluation, targeted: frozenset[str]
) -> list[FlagEvaluation]:
    """Every feature's evaluation for the unit of `evaluation` (`Snapshot.evaluate`), in
    feature-name order, without revision metadata. Costs one explanation of the unit's view
    (`Snapshot.explain_view`: no pass over the configuration)."""
    return UnitEvaluations(snapshot, evaluation, targeted).all()


class UnitEvaluations:
    """The evaluations of one unit (`Snapshot.evaluate`), without revision metadata, each
    made when first asked for: a request for one flag explains that feature only
    (`Snapshot.explain_feature`), which matters for views met at request time (rule groups
    make one per combination of matched groups). Not thread-safe."""

    __slots__ = ("_bucket", "_features", "_groups", "_made", "_snapshot", "_unit")

    def __init__(
        self, snapshot: Snapshot, evaluation: Evaluation | Placement, targeted: frozenset[str]
    ) -> None:
        self._snapshot = snapshot
        self._bucket, self._groups = evaluation.bucket, evaluation.groups
        self._features = snapshot.config.features
        self._unit = UnitContext(evaluation.subject is not None, evaluation.bucket, targeted)
        self._made: dict[str, FlagEvaluation] = {}

    @property
    def bucket(self) -> int | None:
        """The unit's bucket; None while the database has no bucket."""
        return self._bucket

    def get(self, name: str) -> FlagEvaluation | None:
        """Feature `name`'s evaluation, or None if there is no such feature."""
        made = self._made.get(name)
        if made is None:
            feature = self._features.get(name)
            if feature is None:
                return None
            why = self._snapshot.explain_feature(self._bucket, self._groups, name)
            made = self._made[name] = evaluate(feature, why, self._unit)
        return made

    def all(self) -> list[FlagEvaluation]:
        """Every feature's evaluation, in feature-name order."""
        explained = self._snapshot.explain_view(self._bucket, self._groups)
        for name in sorted(self._features.keys() - self._made.keys()):
            self._made[name] = evaluate(self._features[name], explained.get(name), self._unit)
        return [self._made[name] for name in sorted(self._made)]


def as_stale(evaluation: FlagEvaluation) -> FlagEvaluation:
    """`evaluation` from a snapshot that may lag its source: reason ``STALE``, the reason
    it had in metadata ``resolutionReason``; variant and value unchanged."""
    metadata = {**evaluation.metadata, "resolutionReason": evaluation.reason}
    return FlagEvaluation(
        evaluation.key, STALE_REASON, evaluation.variant, metadata, evaluation.value
    )


def with_revision(evaluation: FlagEvaluation, revision: int) -> FlagEvaluation:
    """`evaluation` with the snapshot's revision added to its metadata."""
    metadata = {**evaluation.metadata, "revision": revision}
    return FlagEvaluation(
        evaluation.key, evaluation.reason, evaluation.variant, metadata, evaluation.value
    )
