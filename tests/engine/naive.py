"""Resolution the obvious way, straight from a State: the reference the snapshot is tested against.

Deliberately simple and slow (linear scans, nothing precomputed): it should be possible to
check it against docs/semantics.md ("Resolution") line by line. It lives with the tests because
it is an oracle, not a second implementation for users.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from flaggery.engine.model import DISABLE, State
from flaggery.errors import SubjectNotFound

__all__ = ["naive_bucket_of_key", "naive_key_variants", "naive_variants"]


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
    return _killed(state, flags)


def _killed(state: State, flags: dict[str, str]) -> dict[str, str]:
    """5. the kill switch: a killed feature is disabled whatever the steps above gave."""
    for feature in state.features.values():
        if feature.killed:
            flags[feature.name] = DISABLE
    return flags


def naive_bucket_of_key(state: State, key: str) -> int:
    """The bucket a hashed key lands in, written from docs/allocation.md alone (the Python
    there, to reproduce offline): BLAKE2b keyed by the salt, then jump consistent hash."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8, key=state.key_salt).digest()
    h = int.from_bytes(digest, "big")
    b, j = -1, 0
    while j < len(state.buckets):
        b = j
        h = (h * 2862933555777941757 + 1) % 2**64
        j = int((b + 1) * (2**31 / ((h >> 33) + 1)))
    return state.buckets[b]  # in creation order


def naive_key_variants(state: State, key: str, now: datetime) -> dict[str, str]:
    """What a targeting key gets: a registered subject's canonical id is that subject; any
    other key gets what a subject in its hashed bucket with no group gets."""
    if key.isdigit() and key.isascii() and str(int(key)) == key and int(key) in state.subjects.ids:
        return naive_variants(state, int(key), now)
    flags = {f.name: f.default for f in state.features.values() if f.default is not None}
    if not state.buckets:
        return _killed(state, flags)
    bucket = naive_bucket_of_key(state, key)
    for rollout in state.rollouts.values():
        if bucket in rollout.buckets:
            flags[rollout.feature] = rollout.variant
    for test in state.abtests.values():
        if test.is_live(now):
            for test_group in test.groups:
                if bucket in test_group.buckets:
                    flags.update(test_group.variants)
    return _killed(state, flags)
