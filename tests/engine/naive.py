"""Resolution the obvious way, straight from a State: the reference the snapshot is tested against.

Deliberately simple and slow (linear scans, nothing precomputed): it should be possible to
check it against docs/semantics.md ("Resolution") line by line. It lives with the tests because
it is an oracle, not a second implementation for users.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime

from flaggery.engine.model import DISABLE, State
from flaggery.engine.rules import RuleMatcher
from flaggery.errors import SubjectNotFound

__all__ = [
    "naive_bucket_of_key",
    "naive_groups",
    "naive_key_variants",
    "naive_variants",
    "naive_view",
]


def naive_groups(
    state: State, explicit: tuple[str, ...], context: Mapping[str, object] | None, now: datetime
) -> tuple[str, ...]:
    """The groups a request is in, in the order their overrides apply: the rule groups its
    context matches (name order; each rule on its own), then the explicit ones (join order).
    A request without context (None or no attribute) is in its explicit groups only."""
    matched = [
        name
        for name, group in sorted(state.groups.items())
        if context
        and group.rule is not None
        and name not in explicit
        and RuleMatcher({name: group.rule}).groups(context, now)
    ]
    return (*matched, *explicit)


# The reference resolution: the rules as written, flat (its branches are the rules).
def naive_variants(
    state: State, subject_id: int, now: datetime, context: Mapping[str, object] | None = None
) -> dict[str, str]:
    """The subject's feature -> variant map at `now`, for a request with `context`;
    `SubjectNotFound` if unknown."""
    try:
        position = state.subjects.ids.index(subject_id)
    except ValueError:
        raise SubjectNotFound(f"Subject {subject_id} does not exist.") from None
    explicit = state.memberships.get(subject_id, ())
    return naive_view(state, state.subjects.buckets[position], explicit, context, now)


def naive_view(  # noqa: C901 - the reference resolution, flat: its branches are the rules
    state: State,
    bucket: int | None,
    explicit: tuple[str, ...],
    context: Mapping[str, object] | None,
    now: datetime,
) -> dict[str, str]:
    """What a unit in `bucket` (None: no bucket yet) with these explicit groups gets."""
    groups = naive_groups(state, explicit, context, now)
    flags: dict[str, str] = {}
    # 1. every feature's default variant
    for feature in state.features.values():
        if feature.default is not None:
            flags[feature.name] = feature.default
    # 2. rollouts that include the unit's bucket (and, with an audience, its groups)
    for rollout in state.rollouts.values():
        if bucket in rollout.buckets and rollout.audience in (None, *groups):
            flags[rollout.feature] = rollout.variant
    # 3. the group holding the unit's bucket in each live A/B test (audience: as above)
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
    return _killed(state, flags)


def _killed(state: State, flags: dict[str, str]) -> dict[str, str]:
    """5. the kill switch: a killed feature is disabled whatever the steps above gave."""
    for feature in state.features.values():
        if feature.killed:
            flags[feature.name] = DISABLE
    return flags


def naive_bucket_of_key(state: State, key: str) -> int:
    """The bucket a hashed key lands in, written from docs/allocation.md alone (the Python
    there, to reproduce offline): BLAKE2b keyed by the salt, then jump consistent hash over
    the buckets before the first split, then each split's and each later jump's own draw."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8, key=state.key_salt).digest()
    h = int.from_bytes(digest, "big")
    splits = state.key_splits
    ends = [start for start, _ in splits[1:]] + [len(state.buckets)]
    index = _jump(h, splits[0][0] if splits else len(state.buckets))
    for (start, m), end in zip(splits, ends[: len(splits)], strict=True):
        child = (_splitmix64((h + start * _PHI) % 2**64) * m) >> 64
        if child:
            index = start + index * (m - 1) + child - 1
        if end > start * m:
            jumped = _jump(_splitmix64((h + start * m * _PHI) % 2**64), end)
            if jumped >= start * m:
                index = jumped
    return state.buckets[index]  # in creation order


_PHI = 0x9E3779B97F4A7C15


def _jump(h: int, count: int) -> int:
    b, j = -1, 0
    while j < count:
        b = j
        h = (h * 2862933555777941757 + 1) % 2**64
        j = int((b + 1) * (2**31 / ((h >> 33) + 1)))
    return b


def _splitmix64(x: int) -> int:
    x = (x + _PHI) % 2**64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) % 2**64
    return x ^ (x >> 31)


def naive_key_variants(
    state: State, key: str, now: datetime, context: Mapping[str, object] | None = None
) -> dict[str, str]:
    """What a targeting key gets: a registered subject's canonical id is that subject; any
    other key gets what a unit in its hashed bucket with no explicit group gets."""
    if key.isdigit() and key.isascii() and str(int(key)) == key and int(key) in state.subjects.ids:
        return naive_variants(state, int(key), now, context)
    bucket = naive_bucket_of_key(state, key) if state.buckets else None
    return naive_view(state, bucket, (), context, now)
