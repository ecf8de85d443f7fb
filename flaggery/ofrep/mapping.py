"""THE mapping from the engine's explanation to OFREP: reason, variant, value and metadata.

The engine says which variant each feature resolved to and which resolution step chose it
(`flaggery.engine.FeatureExplanation`); this module only translates, in one table:

| engine                                  | OFREP reason      | value           |
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
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from flaggery.engine import Config, FeatureExplanation
from flaggery.engine.model import Feature
from flaggery.ofrep.codec import FlagEvaluation, Metadata

__all__ = ["REASONS", "SubjectContext", "evaluate", "targeted_features"]

REASONS: Mapping[str, str] = {
    "default": "DEFAULT",  # STATIC instead when nothing targets the feature (see evaluate)
    "rollout": "SPLIT",
    "abtest": "SPLIT",
    "override": "TARGETING_MATCH",
    "killed": "DISABLED",  # the variant is __DISABLE__: answered as disabled (see evaluate)
}
"""Explanation source -> OFREP reason."""

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
