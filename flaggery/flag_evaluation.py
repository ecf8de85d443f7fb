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
| default, the subject is not registered  | DEFAULT           | variant's value |
| rollout                                 | SPLIT             | variant's value |
| A/B test group                          | SPLIT             | variant's value |
| group override                          | TARGETING_MATCH   | variant's value |
| no variant at all for the subject       | DEFAULT           | omitted         |

An omitted value means "use the caller's code default". ``variant`` is always present (the
empty string when there is none), because the Python OFREP provider requires it. Metadata says
where the answer came from: ``source``, ``subjectKnown``, ``bucket``, and per source
``proportion``, ``abTest`` and ``abTestGroup``, or ``group``.

An answer from a snapshot that may lag its source (the database unreachable, an edge behind or
cut off from its upstream, a newer state that does not build) says so, as flagd does: reason
``STALE`` (OpenFeature: "the resolved value is non-authoritative or possibly out of date"),
with the reason it would have had in ``resolutionReason`` (`as_stale`).
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from flaggery.engine import Config, FeatureExplanation, Snapshot
from flaggery.engine.model import Feature, JsonValue
from flaggery.engine.views import default_layer

__all__ = [
    "REASONS",
    "STALE_REASON",
    "UNKNOWN_SLOT",
    "FlagEvaluation",
    "InvalidTargetingKey",
    "Metadata",
    "SubjectContext",
    "as_stale",
    "evaluate",
    "evaluate_view",
    "parse_targeting_key",
    "targeted_features",
    "with_revision",
]

Metadata = dict[str, str | int | float | bool]
"""OpenFeature flag metadata: values are strings, numbers or booleans only."""

UNKNOWN_SLOT = -1
STALE_REASON = "STALE"
"""The view key of every subject that is not registered (they all get the defaults)."""


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


class SubjectContext(msgspec.Struct, frozen=True):
    """What every flag of one subject shares: is it registered, and its bucket if so."""

    known: bool
    bucket: int | None
    targeted: frozenset[str]
    """Features that some rollout, A/B test or group override sets (see `targeted_features`)."""


def evaluate(
    feature: Feature, why: FeatureExplanation | None, subject: SubjectContext
) -> FlagEvaluation:
    """One feature's OFREP evaluation for a subject, from the engine's explanation (None when
    the subject has no variant of this feature)."""
    metadata: Metadata = {"subjectKnown": subject.known}
    if subject.bucket is not None:
        metadata["bucket"] = subject.bucket
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
    if why.source == "default" and subject.known and feature.name not in subject.targeted:
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


def evaluate_view(
    snapshot: Snapshot, subject_id: int, slot: int, targeted: frozenset[str]
) -> list[FlagEvaluation]:
    """Every feature's evaluation for `subject_id`, whose view is `slot` (`UNKNOWN_SLOT` for a
    subject that is not registered), in feature-name order, without revision metadata.
    Costs one explanation: a pass over the configuration."""
    if slot == UNKNOWN_SLOT:
        explained = default_layer(snapshot.config)
        context = SubjectContext(known=False, bucket=None, targeted=targeted)
    else:
        explanation = snapshot.explain(subject_id)
        explained = explanation.features
        context = SubjectContext(True, explanation.bucket, targeted)
    features = sorted(snapshot.config.features.values(), key=lambda feature: feature.name)
    return [evaluate(feature, explained.get(feature.name), context) for feature in features]


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


MIN_ID, MAX_ID = -(2**63), 2**63 - 1
_MAX_ID_DIGITS = 19  # a signed 64-bit integer has at most 19 digits


class InvalidTargetingKey(ValueError):
    """A targeting key that is not a subject id; ``str(error)`` says what a key must be."""


def parse_targeting_key(key: object) -> int:
    """A targeting key as a subject id: a string of a decimal signed 64-bit integer.
    Raises InvalidTargetingKey."""
    if isinstance(key, str):
        digits = key[1:] if key[:1] == "-" else key
        # Length first: int() refuses more than 4,300 digits with a ValueError of its own.
        if digits.isascii() and digits.isdigit() and len(digits.lstrip("0")) <= _MAX_ID_DIGITS:
            subject_id = int(key)
            if MIN_ID <= subject_id <= MAX_ID:
                return subject_id
    raise InvalidTargetingKey(
        "targetingKey must be a subject id: a string holding a decimal signed 64-bit integer "
        f'such as "42", got {key!r:.60}.'
    )
