"""Resolution the obvious way, straight from a State: the reference the snapshot is tested against.

Deliberately simple and slow (linear scans, nothing precomputed): it should be possible to
check it against docs/semantics.md ("Resolution") line by line. It lives with the tests because
it is an oracle, not a second implementation for users.
"""

from __future__ import annotations

from datetime import datetime

from flaggery.engine.model import State
from flaggery.errors import SubjectNotFound

__all__ = ["naive_variants"]


# The reference resolution: the rules as written, flat (its branches are the rules).
def naive_variants(state: State, subject_id: int, now: datetime) -> dict[str, str]:  # noqa: C901
    """The subject's feature -> variant map at `now`; `SubjectNotFound` if unknown."""
    try:
        position = state.subjects.ids.index(subject_id)
    except ValueError:
        raise SubjectNotFound(f"Subject {subject_id} does not exist.") from None
    bucket = state.subjects.buckets[position]
    flags: dict[str, str] = {}
    # 1. every feature's default variant
    for feature in state.features.values():
        if feature.default is not None:
            flags[feature.name] = feature.default
    # 2. rollouts that include the subject's bucket
    for rollout in state.rollouts.values():
        if bucket in rollout.buckets:
            flags[rollout.feature] = rollout.variant
    # 3. the group holding the subject's bucket in each live A/B test
    for test in state.abtests.values():
        if test.is_live(now):
            for test_group in test.groups:
                if bucket in test_group.buckets:
                    flags.update(test_group.variants)
    # 4. the overrides of the subject's groups, in the order it joined them
    for group_name in state.memberships.get(subject_id, ()):
        group = state.groups.get(group_name)
        if group is not None:
            flags.update(group.overrides)
    return flags
