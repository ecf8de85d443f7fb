"""The configuration part of a State: everything views are resolved from except subjects."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TypeVar

import msgspec

from flaggery.engine.model import (
    AbTest,
    AbTestFact,
    BucketFact,
    Fact,
    Feature,
    FeatureFact,
    Group,
    GroupFact,
    Rollout,
    RolloutFact,
    State,
)

__all__ = ["RESOLUTION_FACTS", "Config"]

RESOLUTION_FACTS = (FeatureFact, RolloutFact, AbTestFact, GroupFact)
"""Fact types that can change what an existing (bucket, groups) view resolves to."""

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

    @classmethod
    def of(cls, state: State) -> Config:
        """The configuration part of `state`."""
        return cls(
            buckets=state.buckets,
            features=MappingProxyType(dict(state.features)),
            rollouts=MappingProxyType(dict(state.rollouts)),
            abtests=MappingProxyType(dict(state.abtests)),
            groups=MappingProxyType(dict(state.groups)),
        )

    def with_facts(self, facts: Iterable[Fact]) -> Config:
        """A new Config with the configuration facts applied in order (subject facts ignored)."""
        buckets = list(self.buckets)
        known_buckets = set(buckets)
        features, rollouts = dict(self.features), dict(self.rollouts)
        abtests, groups = dict(self.abtests), dict(self.groups)
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
                    _replace(groups, name, group)
        return Config(
            buckets=tuple(buckets),
            features=MappingProxyType(features),
            rollouts=MappingProxyType(rollouts),
            abtests=MappingProxyType(abtests),
            groups=MappingProxyType(groups),
        )


def _replace(entities: dict[str, _Entity], name: str, entity: _Entity | None) -> None:
    """A fact carries the entity's new state, or None when it was deleted."""
    if entity is None:
        entities.pop(name, None)
    else:
        entities[name] = entity
