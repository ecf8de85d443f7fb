"""The guarantees of hashed targeting keys (issue 19; docs/allocation.md), as statistical tests
over 100,000 keys and 100 buckets of equal weight. Inputs are seeded, so a run is reproducible;
each bound below is stated with the margin it allows.

1. Uniform: keys pass a chi-squared test of uniformity over the buckets at p = 0.001.
2. Share: a rollout holding k of B buckets serves k/B of keys, within 1 percentage point.
3. Independent: two 10% rollouts of different features overlap on about 1% of keys (mean over
   60 feature pairs within 1 +- 0.3 %); two 50/50 tests agree on about half (50 +- 2 %).
4. Sticky: lowering a rollout and raising it back serves exactly the same keys (20,000 keys:
   the property is exact, not statistical).
5. Growth: B -> B' buckets moves a key only into a new bucket, at most (B'-B)/B' of keys plus
   1 point, and keys are uniform over the B' buckets afterwards (chi-squared at p = 0.001).
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Iterable
from statistics import NormalDist, fmean

import pytest

from flaggery.engine import build_snapshot, partition_buckets, rollout_buckets, rollout_order
from flaggery.engine.model import Feature, Rollout, State
from flaggery.engine.targeting import (
    bucket_index,
    bucket_of_key,
    hash_key,
    jump_consistent_hash,
    key_hasher,
)
from tests.engine.strategies import make_state, minute

KEY_COUNT = 100_000
BUCKETS = tuple(range(1, 101))
WEIGHTS = dict.fromkeys(BUCKETS, 10)
SALT = random.Random(19).randbytes(16)
_RANDOM = random.Random(20)
KEYS = [str(uuid.UUID(int=_RANDOM.getrandbits(128), version=4)) for _ in range(KEY_COUNT)]
"""Visitors' UUIDs, as the OpenFeature conformance suite sends them."""


def chi_squared_limit(degrees: int, p: float = 0.001) -> float:
    """The chi-squared quantile at 1 - p (Wilson and Hilferty's approximation: within 0.1 of
    the exact value at these degrees of freedom, e.g. 148.28 against 148.23 for 99)."""
    z = NormalDist().inv_cdf(1 - p)
    cube: float = (1 - 2 / (9 * degrees) + z * (2 / (9 * degrees)) ** 0.5) ** 3
    return degrees * cube


def chi_squared(counts: Iterable[int], cells: int, total: int) -> float:
    expected = total / cells
    observed = list(counts)
    observed += [0] * (cells - len(observed))  # cells no key reached
    return sum((count - expected) ** 2 / expected for count in observed)


def _buckets(keys: list[str], buckets: tuple[int, ...]) -> list[int]:
    hash_of = key_hasher(SALT)
    return [bucket_of_key(hash_of, buckets, key)[1] for key in keys]


def _state(rollouts: Iterable[Rollout]) -> State:
    rollouts = list(rollouts)
    features = [Feature(rollout.feature, ("off", "on"), "off") for rollout in rollouts]
    return make_state(buckets=BUCKETS, features=features, rollouts=rollouts, key_salt=SALT)


def _rollout(feature: str, proportion: float) -> Rollout:
    order = rollout_order(feature, BUCKETS, (), ())
    held = rollout_buckets(WEIGHTS, frozenset(), proportion, order)
    return Rollout(feature, "on", proportion, held)


def _served(state: State, feature: str, keys: list[str]) -> set[str]:
    snapshot = build_snapshot(state, minute(0))
    return {key for key in keys if snapshot.evaluate(key).flags.get(feature) == "on"}


def test_1_keys_are_uniform_over_the_buckets() -> None:
    counts = Counter(_buckets(KEYS, BUCKETS))
    assert chi_squared(counts.values(), len(BUCKETS), KEY_COUNT) < chi_squared_limit(99)


def test_2_a_rollout_of_k_buckets_serves_k_over_b_of_keys() -> None:
    rollouts = [_rollout(f"feature-{p}", p) for p in (0.1, 0.25, 0.5, 0.9)]
    snapshot = build_snapshot(_state(rollouts), minute(0))
    served = Counter(
        feature for key in KEYS for feature, variant in snapshot.evaluate(key).flags.items()
        if variant == "on"
    )  # fmt: skip
    for rollout in rollouts:
        share = served[rollout.feature] / KEY_COUNT
        assert abs(share - len(rollout.buckets) / len(BUCKETS)) <= 0.01


def test_3_rollouts_and_tests_of_different_features_are_independent() -> None:
    rollouts = [_rollout(f"feature-{n}", 0.1) for n in range(12)]
    bucket_of = dict(zip(KEYS, _buckets(KEYS, BUCKETS), strict=True))
    overlaps = []
    for first, second in zip(rollouts[::2], rollouts[1::2], strict=True):
        both = first.buckets & second.buckets
        keys = sum(1 for bucket in bucket_of.values() if bucket in both) / KEY_COUNT
        assert abs(keys - len(both) / len(BUCKETS)) <= 0.01  # keys follow their buckets
        overlaps.append(keys)
    pairs = [(f"feature-{a}", f"feature-{b}") for a in range(12) for b in range(a + 1, 12)][:60]
    bucket_overlaps = [
        len(_rollout(a, 0.1).buckets & _rollout(b, 0.1).buckets) / len(BUCKETS) for a, b in pairs
    ]
    assert abs(fmean(bucket_overlaps) - 0.01) <= 0.003
    agreements = []
    for n in range(30):
        one, _ = partition_buckets(WEIGHTS, [0.5, 0.5], f"test-{n}")
        other, _ = partition_buckets(WEIGHTS, [0.5, 0.5], f"other-{n}")
        same = (set(one[0]) & set(other[0])) | (set(one[1]) & set(other[1]))
        agreements.append(sum(1 for b in bucket_of.values() if b in same) / KEY_COUNT)
    assert abs(fmean(agreements) - 0.5) <= 0.02


def test_4_lowering_and_raising_back_serves_the_same_keys() -> None:
    order = rollout_order("checkout", BUCKETS, (), ())
    at_30 = rollout_buckets(WEIGHTS, frozenset(), 0.3, order)
    at_10 = rollout_buckets(WEIGHTS, at_30, 0.1, order)
    back = rollout_buckets(WEIGHTS, at_10, 0.3, order)
    served = [
        _served(_state([Rollout("checkout", "on", p, held)]), "checkout", KEYS[:20_000])
        for p, held in ((0.3, at_30), (0.1, at_10), (0.3, back))
    ]
    assert served[0] == served[2] and served[1] < served[0]


@pytest.mark.parametrize("grown", [150, 200])
def test_5_growth_moves_keys_only_into_new_buckets_and_keeps_them_uniform(grown: int) -> None:
    hashes = [hash_key(SALT, key) for key in KEYS]
    before = [jump_consistent_hash(h, len(BUCKETS)) for h in hashes]
    after = [jump_consistent_hash(h, grown) for h in hashes]
    moved = [new for old, new in zip(before, after, strict=True) if new != old]
    assert all(new >= len(BUCKETS) for new in moved)
    assert len(moved) / KEY_COUNT <= (grown - len(BUCKETS)) / grown + 0.01
    counts = Counter(after)
    assert chi_squared(counts.values(), grown, KEY_COUNT) < chi_squared_limit(grown - 1)


@pytest.mark.parametrize(
    ("splits", "grown"),
    [(((100, 2),), 200), (((100, 3),), 300), (((100, 2),), 250), (((100, 2), (250, 2)), 500)],
)
def test_5_a_split_moves_keys_only_into_children_of_their_bucket_and_keeps_them_uniform(
    splits: tuple[tuple[int, int], ...], grown: int
) -> None:
    """The goal beyond jump hash: a growth to m times the buckets moves each key from its
    bucket into one of that bucket's children (which copy its memberships), (m - 1)/m of
    them, uniformly; buckets added beyond a split are reached by a jump, into new ones only."""
    hashes = [hash_key(SALT, key) for key in KEYS]
    before = [jump_consistent_hash(h, len(BUCKETS)) for h in hashes]
    after = [bucket_index(h, grown, splits) for h in hashes]
    start, multiple = splits[0]
    split_end = start * multiple
    children = 0
    for old, new in zip(before, after, strict=True):
        if new != old:
            assert new >= len(BUCKETS)
        if len(BUCKETS) <= new < split_end and len(splits) == 1:
            assert (new - start) // (multiple - 1) == old  # its own bucket's child
            children += 1
    assert (
        len([1 for o, n in zip(before, after, strict=True) if o != n]) / KEY_COUNT
        <= (grown - len(BUCKETS)) / grown + 0.01
    )
    if len(splits) == 1:
        expected = (split_end - start) / grown  # the split's share, after any jump past it
        assert abs(children / KEY_COUNT - expected) <= 0.01
    counts = Counter(after)
    assert chi_squared(counts.values(), grown, KEY_COUNT) < chi_squared_limit(grown - 1)


def test_no_split_hashes_as_jump_hash_did() -> None:
    """Upgrade: a database with no split hashes every key as before."""
    for h in (hash_key(SALT, key) for key in KEYS[:2000]):
        assert bucket_index(h, 137, ()) == jump_consistent_hash(h, 137)
