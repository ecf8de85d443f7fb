"""Who gets each variant of a feature after precedence, and who a change would move.

A feature's rollout proportion says what the rollout holds, not what it serves: a live A/B
test over the same feature takes its buckets' subjects, an override takes its group's members,
the kill switch takes everyone. The counts here come from the snapshot's own views instead:
every registered subject sits on one (bucket, groups) view and every hashed targeting key on a
plain bucket view, and each view's variant is explained by the resolver that built the served
flags (flaggery.engine.views), so the numbers are what is served, step by step.

Rule groups are left out: whether a request is in one depends on the context it brings, which
no count made ahead of requests can know (docs/targeting.md).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import assert_never

import msgspec

from flaggery.engine.config import Config
from flaggery.engine.explanation import FeatureExplanation, Source
from flaggery.engine.model import (
    AbTest,
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
from flaggery.engine.views import ViewKey, ViewKeys, explain_key, view_explainer

__all__ = ["FeatureReach", "Move", "Reach", "Via", "feature_reach", "membership_moves", "moves"]


class Via(msgspec.Struct, frozen=True, omit_defaults=True):
    """A variant and the resolution step that serves it (None: the feature has no variant)."""

    variant: str | None
    source: Source | None
    test: str | None = None
    test_group: str | None = None
    group: str | None = None


class Reach(msgspec.Struct, frozen=True):
    """The units one `Via` serves: registered subjects, and plain buckets (hashed keys)."""

    via: Via
    subjects: int
    buckets: int


class FeatureReach(msgspec.Struct, frozen=True):
    """Every (variant, step) of one feature with the units it serves now, most subjects first.

    ``subjects`` and ``buckets`` are the totals: a reach's share of subjects is its count out
    of ``subjects``; its share of hashed targeting keys is its buckets out of ``buckets`` (keys
    hash evenly over buckets)."""

    feature: str
    subjects: int
    buckets: int
    reaches: tuple[Reach, ...]


class Move(msgspec.Struct, frozen=True):
    """Units of one feature a change moves from one (variant, step) to another."""

    feature: str
    before: Via
    after: Via
    subjects: int
    buckets: int


def feature_reach(
    config: Config, keys: ViewKeys, on_view: Mapping[int, int], feature: str, now: datetime
) -> FeatureReach:
    """Who gets what of ``feature`` at ``now``: ``on_view`` is view slot -> subjects on it."""
    via_of = _via_function(config, feature, now)
    subjects: Counter[Via] = Counter()
    for slot, count in on_view.items():
        subjects[via_of(keys[slot])] += count
    buckets = Counter(via_of(ViewKey(bucket)) for bucket in config.buckets)
    reaches = [
        Reach(via, subjects.get(via, 0), buckets.get(via, 0))
        for via in {**dict.fromkeys(subjects), **dict.fromkeys(buckets)}
    ]
    reaches.sort(key=lambda reach: (-reach.subjects, -reach.buckets, _order(reach.via)))
    return FeatureReach(feature, sum(on_view.values()), len(config.buckets), tuple(reaches))


def moves(
    config: Config,
    keys: ViewKeys,
    on_view: Mapping[int, int],
    facts: Iterable[Fact],
    now: datetime,
) -> list[Move]:
    """What applying ``facts`` to ``config`` would change, at ``now``: per feature the units
    moved from one (variant, step) to another. A change of step alone counts as a move (the
    rollout's variant now served by an override is no longer the rollout's)."""
    facts = tuple(facts)
    after = config.with_facts(facts)
    found: list[Move] = []
    for feature in sorted(_features_touched(config, after, facts)):
        before_of, after_of = (
            _via_function(config, feature, now),
            _via_function(after, feature, now),
        )
        subjects: Counter[tuple[Via, Via]] = Counter()
        for slot, count in on_view.items():
            key = keys[slot]
            subjects[before_of(key), after_of(key)] += count
        buckets = Counter((before_of(ViewKey(b)), after_of(ViewKey(b))) for b in config.buckets)
        for pair in {**dict.fromkeys(subjects), **dict.fromkeys(buckets)}:
            if pair[0] != pair[1]:
                found.append(Move(feature, *pair, subjects.get(pair, 0), buckets.get(pair, 0)))
    found.sort(
        key=lambda m: (m.feature, -m.subjects, -m.buckets, _order(m.before), _order(m.after))
    )
    return found


def membership_moves(config: Config, key: ViewKey, group: str, now: datetime) -> list[Move]:
    """What one subject on view ``key`` gets differently once it leaves ``group``."""
    without = ViewKey(key.bucket, tuple(name for name in key.groups if name != group))
    before, after = explain_key(config, key, now), explain_key(config, without, now)
    return [
        Move(feature, _via(before.get(feature)), _via(after.get(feature)), 1, 0)
        for feature in sorted(before.keys() | after.keys())
        if _via(before.get(feature)) != _via(after.get(feature))
    ]


def _via_function(config: Config, feature: str, now: datetime) -> Callable[[ViewKey], Via]:
    """key -> its `Via` for ``feature``, resolving only what can touch that feature."""
    only = _only(config, feature)
    explain = view_explainer(only, now)
    # Only groups that override the feature or are an audience can change its variant: views
    # differing in other groups resolve alike, so each distinct cut-down key is explained once.
    relevant = set(only.groups) | {r.audience for r in only.rollouts.values() if r.audience}
    relevant |= {t.audience for t in only.abtests.values() if t.audience}
    cache: dict[ViewKey, Via] = {}

    def via_of(key: ViewKey) -> Via:
        cut = ViewKey(key.bucket, tuple(g for g in key.groups if g in relevant))
        found = cache.get(cut)
        if found is None:
            found = cache[cut] = _via(explain(cut).get(feature))
        return found

    return via_of


def _via(why: FeatureExplanation | None) -> Via:
    if why is None:
        return Via(None, None)
    return Via(why.variant, why.source, why.test, why.test_group, why.group)


def _only(config: Config, feature: str) -> Config:
    """``config`` cut down to what can set ``feature``: resolving a view against it gives
    that feature exactly what the whole configuration gives it, for a fraction of the cost."""
    found = config.features.get(feature)
    rollout = config.rollouts.get(feature)
    return Config(
        buckets=config.buckets,
        features={feature: found} if found else {},
        rollouts={feature: rollout} if rollout else {},
        abtests={
            name: _test_only(test, feature)
            for name, test in config.abtests.items()
            if any(feature in group.variants for group in test.groups)
        },
        groups={
            name: msgspec.structs.replace(
                group, overrides={feature: group.overrides[feature]}, rule=None
            )
            for name, group in config.groups.items()
            if feature in group.overrides
        },
        key_salt=config.key_salt,
    )


def _test_only(test: AbTest, feature: str) -> AbTest:
    groups = tuple(
        msgspec.structs.replace(
            group,
            variants={feature: group.variants[feature]} if feature in group.variants else {},
        )
        for group in test.groups
    )
    return msgspec.structs.replace(test, groups=groups)


# One short case per fact type, in one match (mypy checks it covers them all).
def _features_touched(before: Config, after: Config, facts: Iterable[Fact]) -> set[str]:
    touched: set[str] = set()
    for fact in facts:
        match fact:
            case FeatureFact(name=name) | RolloutFact(feature=name):
                touched.add(name)
            case AbTestFact(name=name):
                for config in (before, after):
                    test = config.abtests.get(name)
                    touched.update(f for g in (test.groups if test else ()) for f in g.variants)
            case GroupFact(name=name):
                for config in (before, after):
                    group = config.groups.get(name)
                    touched.update(group.overrides if group else ())
            case GrowthFact() | ReloadFact():
                touched.update(before.features)
                touched.update(after.features)
            case SubjectFact() | SubjectsFact() | BucketFact():
                pass  # a subject's own moves are `membership_moves`
            case DeliveryFact():
                pass  # a record of who moved a rollout: its RolloutFact says what moved
            case _:
                assert_never(fact)
    return touched


_SOURCE_ORDER = {None: 0, "default": 1, "rollout": 2, "abtest": 3, "override": 4, "killed": 5}


def _order(via: Via) -> tuple[int, str, str]:
    """Resolution order, for reaches that serve nobody (ties on both counts)."""
    return (_SOURCE_ORDER[via.source], via.test or via.group or "", via.variant or "")
