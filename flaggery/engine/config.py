"""The configuration part of a State: everything views are resolved from except subjects."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TypeVar, assert_never

import msgspec

from flaggery.engine.model import (
    AbTest,
    AbTestFact,
    BucketFact,
    DeliveryFact,
    Fact,
    Feature,
    FeatureFact,
    Group,
    GroupFact,
    GrownTest,
    GrowthFact,
    ReloadFact,
    Rollout,
    RolloutFact,
    State,
    SubjectFact,
    SubjectsFact,
)
from flaggery.engine.rules import Rule, RuleMatcher

__all__ = ["Config", "changes_resolution", "compile_rules"]

NO_RULES = RuleMatcher({})


def changes_resolution(fact: Fact) -> bool:
    """Whether `fact` can change what an existing (bucket, groups) view resolves to."""
    match fact:
        case FeatureFact() | RolloutFact() | AbTestFact() | GroupFact() | GrowthFact():
            return True
        case SubjectFact() | SubjectsFact() | BucketFact() | DeliveryFact():
            return False
        case ReloadFact():  # may change anything
            return True
        case _:
            assert_never(fact)


_Entity = TypeVar("_Entity")


class Config(msgspec.Struct, frozen=True):
    """Buckets, features, rollouts, A/B tests and groups, with read-only mappings.

    It is small (no per-subject data), so applying facts copies it whole.
    """

    buckets: tuple[int, ...]
    features: Mapping[str, Feature]
    rollouts: Mapping[str, Rollout]
    """feature name -> its rollout."""
    abtests: Mapping[str, AbTest]
    groups: Mapping[str, Group]
    key_salt: bytes
    """The salt targeting keys are hashed with (flaggery.engine.targeting)."""
    rules: RuleMatcher = NO_RULES
    """The rules of `groups`, compiled (by `of` and `with_facts`: once per snapshot)."""

    @classmethod
    def of(cls, state: State) -> Config:
        """The configuration part of `state`."""
        return cls(
            buckets=state.buckets,
            features=MappingProxyType(dict(state.features)),
            rollouts=MappingProxyType(dict(state.rollouts)),
            abtests=MappingProxyType(dict(state.abtests)),
            groups=MappingProxyType(dict(state.groups)),
            key_salt=state.key_salt,
            rules=compile_rules(state.groups),
        )

    # One short case per fact type, in one match (mypy checks it covers them all).
    def with_facts(self, facts: Iterable[Fact]) -> Config:  # noqa: C901
        """A new Config with the configuration facts applied in order (subject facts ignored)."""
        buckets = list(self.buckets)
        known_buckets = set(buckets)
        features, rollouts = dict(self.features), dict(self.rollouts)
        abtests, groups = dict(self.abtests), dict(self.groups)
        rules_changed = False
        for fact in facts:
            match fact:
                case BucketFact(id=bucket) if bucket not in known_buckets:
                    buckets.append(bucket)
                    known_buckets.add(bucket)
                case FeatureFact(name=name, feature=feature):
                    _replace(features, name, feature)
                case RolloutFact(feature=name, rollout=rollout):
                    _replace(rollouts, name, rollout)
                case AbTestFact(name=name, test=test):
                    _replace(abtests, name, test)
                case GroupFact(name=name, group=group):
                    before = groups.get(name)
                    rules_changed |= _rule_of(before) != _rule_of(group)
                    _replace(groups, name, group)
                case GrowthFact(first=first, last=last):
                    for bucket in range(first, last + 1):
                        if bucket not in known_buckets:
                            buckets.append(bucket)
                            known_buckets.add(bucket)
                    _grow(rollouts, abtests, fact)
                case BucketFact() | SubjectFact() | SubjectsFact() | DeliveryFact() | ReloadFact():
                    # a known bucket; subjects live in the index; schedules and plans are no
                    # part of resolution; a reload never gets here
                    pass
                case _:
                    assert_never(fact)
        return Config(
            buckets=tuple(buckets),
            features=MappingProxyType(features),
            rollouts=MappingProxyType(rollouts),
            abtests=MappingProxyType(abtests),
            groups=MappingProxyType(groups),
            key_salt=self.key_salt,
            rules=compile_rules(groups, self.rules) if rules_changed else self.rules,
        )


def compile_rules(groups: Mapping[str, Group], previous: RuleMatcher | None = None) -> RuleMatcher:
    """The rules of the groups that have one, compiled (reusing what `previous` compiled)."""
    rules = {group.name: group.rule for group in groups.values() if group.rule is not None}
    return RuleMatcher(rules, previous)


def _rule_of(group: Group | None) -> Rule | None:
    return None if group is None else group.rule


def _grow(rollouts: dict[str, Rollout], abtests: dict[str, AbTest], fact: GrowthFact) -> None:
    """Add the new buckets each rollout and test group took; names the configuration does not
    hold (never the case for a log read in order) are skipped."""
    for feature, taken in fact.rollouts.items():
        rollout = rollouts.get(feature)
        if rollout is not None:
            rollouts[feature] = msgspec.structs.replace(
                rollout, buckets=rollout.buckets.union(taken)
            )
    for name, grown in fact.abtests.items():
        test = abtests.get(name)
        if test is not None:
            abtests[name] = _grown_test(test, grown)


def _grown_test(test: AbTest, grown: GrownTest) -> AbTest:
    groups = tuple(
        msgspec.structs.replace(group, buckets=group.buckets.union(grown.groups[group.name]))
        if grown.groups.get(group.name)
        else group
        for group in test.groups
    )
    return msgspec.structs.replace(test, groups=groups)


def _replace(entities: dict[str, _Entity], name: str, entity: _Entity | None) -> None:
    """A fact carries the entity's new state, or None when it was deleted."""
    if entity is None:
        entities.pop(name, None)
    else:
        entities[name] = entity
