"""What a change-log fact touches: the one answer history filters, the concurrency check of
conditional writes and every other reader of facts share.

A removal names what it removed (the groups a subject left, the overrides a group lost, the
features a removed A/B test set), so a filter or a condition on one of those sees it. The
switch over the fact union ends in `typing.assert_never`: mypy lists this function when a new
fact type is added, and nothing falls through to a silent default.
"""

from __future__ import annotations

from typing import assert_never

import msgspec

from flaggery.engine.model import (
    AbTestFact,
    BucketFact,
    DeliveryFact,
    Fact,
    FeatureFact,
    GroupFact,
    GrowthFact,
    ReloadFact,
    RolloutFact,
    SubjectFact,
    SubjectsFact,
)

__all__ = ["Touched", "touched"]

_NONE: frozenset[str] = frozenset()


class Touched(msgspec.Struct, frozen=True):
    """The names one fact touches, by kind.

    ``groups`` are groups whose definition changed (created, removed, an override);
    ``members`` are groups whose membership changed (a subject joined, left, or a member was
    changed or removed). ``everything``: a write logged as a reload, which may touch anything.
    """

    features: frozenset[str] = _NONE
    groups: frozenset[str] = _NONE
    members: frozenset[str] = _NONE
    tests: frozenset[str] = _NONE
    subjects: frozenset[int] = frozenset()
    everything: bool = False


_EVERYTHING = Touched(everything=True)
_NOTHING = Touched()


def touched(fact: Fact) -> Touched:
    """The features, groups, memberships, A/B tests and subjects `fact` touches."""
    match fact:
        case SubjectFact(id=subject_id, subject=subject, left=left):
            now_in = () if subject is None else subject.groups
            return Touched(members=frozenset((*now_in, *left)), subjects=frozenset((subject_id,)))
        case SubjectsFact():
            return Touched(subjects=frozenset(fact.columns()[0]))
        case FeatureFact(name=name) | RolloutFact(feature=name):
            return Touched(features=frozenset((name,)))
        case AbTestFact(name=name, test=test, removed_features=removed):
            tested = () if test is None else (f for group in test.groups for f in group.variants)
            return Touched(features=frozenset((*tested, *removed)), tests=frozenset((name,)))
        case GroupFact(name=name, group=group, removed_overrides=removed):
            overridden = () if group is None else tuple(group.overrides)
            return Touched(features=frozenset((*overridden, *removed)), groups=frozenset((name,)))
        case GrowthFact(rollouts=rollouts, abtests=abtests):
            tested = (feature for grown in abtests.values() for feature in grown.features)
            return Touched(features=frozenset((*rollouts, *tested)), tests=frozenset(abtests))
        case DeliveryFact(features=features):
            return Touched(features=frozenset(features))
        case BucketFact():
            return _NOTHING
        case ReloadFact():
            return _EVERYTHING
        case _:
            assert_never(fact)
