"""Which flags a new snapshot may resolve differently: the ``flags_changed`` of OpenFeature's
PROVIDER_CONFIGURATION_CHANGED event."""

from __future__ import annotations

from collections.abc import Mapping

from flaggery.engine import Snapshot
from flaggery.engine.model import Group
from flaggery.engine.views import live_tests

__all__ = ["changed_flags"]


def changed_flags(old: Snapshot, new: Snapshot) -> list[str]:
    """Feature names whose configuration differs between the snapshots: the feature itself
    (variants, values, default), its rollout, a test setting it that changed or started or
    ended, an override of it that a group gained, lost or changed. Sorted. Subject changes
    (a new subject, a membership) move no flag's configuration and are not listed."""
    before, after = old.config, new.config
    changed = {
        name
        for name in {*before.features, *after.features}
        if before.features.get(name) != after.features.get(name)
        or before.rollouts.get(name) != after.rollouts.get(name)
    }
    live_before = {test.name for test in live_tests(before.abtests, old.built_at)}
    live_after = {test.name for test in live_tests(after.abtests, new.built_at)}
    for name in {*before.abtests, *after.abtests}:
        test_before, test_after = before.abtests.get(name), after.abtests.get(name)
        if test_before != test_after or (name in live_before) != (name in live_after):
            for test in (test_before, test_after):
                for test_group in test.groups if test is not None else ():
                    changed.update(test_group.variants)
    for name in {*before.groups, *after.groups}:
        old_overrides = _overrides(before.groups.get(name))
        new_overrides = _overrides(after.groups.get(name))
        changed.update(
            feature
            for feature in {*old_overrides, *new_overrides}
            if old_overrides.get(feature) != new_overrides.get(feature)
        )
    return sorted(changed)


def _overrides(group: Group | None) -> Mapping[str, str]:
    return {} if group is None else group.overrides
