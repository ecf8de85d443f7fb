from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flaggery.engine.allocation import (
    lightest_bucket,
    partition_buckets,
    place_subjects,
    rollout_buckets,
    rollout_share_of_new_buckets,
    split_new_buckets,
)
from flaggery.errors import InvalidRolloutProportion, NoBuckets, ValidationError

bucket_weights = st.dictionaries(st.integers(0, 30), st.integers(0, 40), max_size=12)
nonempty_bucket_weights = st.dictionaries(st.integers(0, 30), st.integers(0, 40), min_size=1)
proportions = st.floats(0, 1)
group_proportions = st.lists(st.integers(1, 10), min_size=2, max_size=4).map(
    lambda parts: [part / sum(parts) for part in parts]
)


def effective(weights: dict[int, int], buckets: frozenset[int]) -> int:
    return sum(weights[bucket] for bucket in buckets)


def test_lightest_bucket_takes_the_lowest_weight_then_the_lowest_id() -> None:
    assert lightest_bucket({3: 5, 1: 7, 2: 5}) == 2


def test_lightest_bucket_without_buckets_says_what_to_do() -> None:
    with pytest.raises(NoBuckets, match=r"Call increase_buckets\(amount\) first"):
        lightest_bucket({})


def test_place_subjects_without_buckets_fails_only_if_there_are_subjects() -> None:
    assert place_subjects({}, []) == []
    with pytest.raises(NoBuckets):
        place_subjects({}, [1])


@given(nonempty_bucket_weights, st.lists(st.integers(1, 10), max_size=30))
def test_place_subjects_equals_placing_one_by_one(weights: dict[int, int], new: list[int]) -> None:
    current = dict(weights)
    expected = []
    for weight in new:
        bucket = lightest_bucket(current)
        current[bucket] += weight
        expected.append(bucket)
    assert place_subjects(weights, new) == expected


@given(bucket_weights, st.frozensets(st.integers(0, 30)), proportions)
def test_rollout_moves_one_way_only(
    weights: dict[int, int], current: frozenset[int], proportion: float
) -> None:
    current = current & weights.keys()
    result = rollout_buckets(weights, current, proportion)
    target = proportion * sum(weights.values())
    assert result <= weights.keys()
    if target > effective(weights, current):
        assert result >= current
    elif target < effective(weights, current):
        assert result <= current
    assert result >= current or result <= current


@given(bucket_weights, st.frozensets(st.integers(0, 30)), proportions)
def test_rollout_lands_within_the_largest_bucket(
    weights: dict[int, int], current: frozenset[int], proportion: float
) -> None:
    result = rollout_buckets(weights, current, proportion)
    largest = max(weights.values(), default=0)
    target = proportion * sum(weights.values())
    assert abs(effective(weights, result) - target) <= largest + 1e-9


@given(bucket_weights, proportions)
def test_new_rollout_lands_within_half_the_largest_bucket(
    weights: dict[int, int], proportion: float
) -> None:
    result = rollout_buckets(weights, frozenset(), proportion)
    largest = max(weights.values(), default=0)
    target = proportion * sum(weights.values())
    assert abs(effective(weights, result) - target) <= largest / 2 + 1e-9


@given(bucket_weights, proportions)
def test_rollout_holds_its_share_of_empty_buckets(weights: dict[int, int], p: float) -> None:
    empty = sorted(bucket for bucket, weight in weights.items() if weight == 0)
    result = rollout_buckets(weights, frozenset(), p)
    assert sorted(result & set(empty)) == empty[: math.floor(p * len(empty) + 1e-9)]


@given(bucket_weights, st.lists(proportions, min_size=1, max_size=6))
def test_raising_step_by_step_only_adds(weights: dict[int, int], steps: list[float]) -> None:
    buckets: frozenset[int] = frozenset()
    for proportion in sorted(steps):
        raised = rollout_buckets(weights, buckets, proportion)
        assert raised >= buckets
        buckets = raised
    for proportion in sorted(steps, reverse=True):
        lowered = rollout_buckets(weights, buckets, proportion)
        assert lowered <= buckets
        buckets = lowered


@given(bucket_weights, st.frozensets(st.integers(0, 30)))
def test_rollout_extremes_are_nothing_and_everything(
    weights: dict[int, int], current: frozenset[int]
) -> None:
    assert rollout_buckets(weights, current, 0) == frozenset()
    assert rollout_buckets(weights, current, 1) == frozenset(weights)


def test_rollout_does_not_stop_at_the_first_overshoot() -> None:
    # 0.2.1 scans in id order: 3, then 3 + 8 > 9 stops it at 3, undershooting by 6.
    weights = {1: 3, 2: 8, 3: 1, 4: 1, 5: 1, 6: 1}
    result = rollout_buckets(weights, frozenset(), 0.6)
    assert effective(weights, result) == 9
    assert result == {2, 3}


def test_rollout_raise_never_overshoots_past_a_small_bucket_it_would_then_drop() -> None:
    # From {1} (weight 1), adding bucket 3 (weight 2) for a target of 2.25 would overshoot by
    # 0.75; then raising to 0.8 (target 2.4) would want bucket 1 out again.
    weights = {1: 1, 3: 2}
    assert rollout_buckets(weights, frozenset({1}), 0.75) == {1}
    assert rollout_buckets(weights, frozenset({1}), 0.9) == {1, 3}


def test_rollout_lowering_removes_the_bucket_closest_to_the_excess() -> None:
    weights = {1: 4, 2: 4, 3: 2}
    assert rollout_buckets(weights, frozenset(weights), 0.8) == {1, 2}


def test_rollout_empty_buckets_leave_highest_first() -> None:
    weights = {1: 0, 2: 0, 3: 0, 4: 0}
    assert rollout_buckets(weights, frozenset(weights), 0.5) == {1, 2}
    assert rollout_buckets(weights, frozenset({3}), 0.75) == {1, 2, 3}


def test_rollout_rejects_proportions_outside_zero_to_one() -> None:
    with pytest.raises(InvalidRolloutProportion):
        rollout_buckets({1: 1}, frozenset(), 1.5)


@given(bucket_weights, group_proportions)
def test_partition_puts_every_bucket_in_exactly_one_group(
    weights: dict[int, int], shares: list[float]
) -> None:
    groups = partition_buckets(weights, shares)
    assert len(groups) == len(shares)
    assert sum(len(group) for group in groups) == len(weights)
    assert frozenset().union(*groups) == weights.keys()


@given(bucket_weights, group_proportions)
def test_partition_groups_land_within_the_largest_bucket(
    weights: dict[int, int], shares: list[float]
) -> None:
    total = sum(weights.values())
    largest = max(weights.values(), default=0)
    for group, share in zip(partition_buckets(weights, shares), shares, strict=True):
        assert abs(effective(weights, group) - share * total) <= largest + 1e-9


def test_partition_example() -> None:
    weights = {1: 5, 2: 4, 3: 3, 4: 2, 5: 0, 6: 0}
    assert partition_buckets(weights, [0.5, 0.5]) == [{1, 4, 5}, {2, 3, 6}]


@given(st.lists(st.integers(), unique=True, max_size=40), group_proportions)
def test_split_new_buckets_by_largest_remainder(ids: list[int], shares: list[float]) -> None:
    groups = split_new_buckets(ids, shares)
    assert frozenset().union(*groups) == set(ids)
    assert sum(len(group) for group in groups) == len(ids)
    for group, share in zip(groups, shares, strict=True):
        assert abs(len(group) - share * len(ids)) < 1


def test_split_new_buckets_gives_leftovers_to_the_largest_remainders() -> None:
    assert split_new_buckets([1, 2, 3, 4, 5], [0.5, 0.3, 0.2]) == [{1, 2, 3}, {4}, {5}]
    assert split_new_buckets([1, 2, 3], [1 / 3, 1 / 3, 1 / 3]) == [{1}, {2}, {3}]


def test_rollout_share_of_new_buckets_rounds_down_and_takes_lowest_ids() -> None:
    assert rollout_share_of_new_buckets([7, 5, 6], 0.5) == {5}
    assert rollout_share_of_new_buckets([7, 5, 6], 1.0) == {5, 6, 7}
    assert rollout_share_of_new_buckets(list(range(100)), 0.29) == set(range(29))


def test_group_proportions_must_be_positive() -> None:
    with pytest.raises(ValidationError):
        partition_buckets({1: 1}, [])
    with pytest.raises(ValidationError):
        split_new_buckets([1], [0.0, 0.0])
