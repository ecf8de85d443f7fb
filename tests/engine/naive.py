"""Resolution the obvious way, straight from a State: the reference the snapshot is tested against.

Deliberately simple and slow (linear scans, nothing precomputed): it should be possible to
check it against docs/semantics.md ("Resolution") line by line. It lives with the tests because
it is an oracle, not a second implementation for users.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from flaggery.engine.model import State
from flaggery.engine.rules import RuleMatcher
from flaggery.errors import SubjectNotFound

__all__ = ["naive_variants"]


def naive_groups(
    state: State, explicit: tuple[str, ...], context: Mapping[str, object] | None, now: datetime
) -> tuple[str, ...]:
    """The groups a request is in, in the order their overrides apply: the rule groups its
    context matches (name order; each rule on its own), then the explicit ones (join order)."""
    matched = [
        name
        for name, group in sorted(state.groups.items())
        if context is not None
        and group.rule is not None
        and name not in explicit
        and RuleMatcher({name: group.rule}).groups(context, now)
    ]
    return (*matched, *explicit)


def naive_variants(
    state: State, subject_id: int, now: datetime, context: Mapping[str, object] | None = None
) -> dict[str, str]:
    """The subject's feature -> variant map at `now`, for a request with `context`;
    `SubjectNotFound` if unknown."""
    try:
        position = state.subjects.ids.index(subject_id)
    except ValueError:
        raise SubjectNotFound(f"Subject {subject_id} does not exist.") from None
    bucket = state.subjects.buckets[position]
    groups = naive_groups(state, state.memberships.get(subject_id, ()), context, now)
    flags: dict[str, str] = {}
    # 1. every feature's default variant
    for feature in state.features.values():
        if feature.default is not None:
            flags[feature.name] = feature.default
    # 2. rollouts that include the subject's bucket (and, with an audience, its groups)
    for rollout in state.rollouts.values():
        if bucket in rollout.buckets and rollout.audience in (None, *groups):
            flags[rollout.feature] = rollout.variant
    # 3. the group holding the subject's bucket in each live A/B test (audience: as above)
    for test in state.abtests.values():
        if test.is_live(now) and test.audience in (None, *groups):
            for test_group in test.groups:
                if bucket in test_group.buckets:
                    flags.update(test_group.variants)
    # 4. the overrides of its groups: rule groups, then those it joined, in join order
    for group_name in groups:
        group = state.groups.get(group_name)
        if group is not None:
            flags.update(group.overrides)
    return flags
