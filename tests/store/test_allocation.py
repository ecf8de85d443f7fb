"""Issue 10's allocation faults, with its numbers, through the admin API on both databases:
independent rollouts and tests, splits that do not drift as buckets and subjects are added,
and a rollout that comes back to exactly the same buckets."""

from __future__ import annotations

import random
from datetime import timedelta

from flaggery.engine.model import GrowthFact
from flaggery.store.repository import AsyncFlaggery
from tests.fakes import FakeClock


async def populate(store: AsyncFlaggery, buckets: int, subjects: int, first_id: int = 0) -> None:
    """Subjects with weights 1-50 (a fixed seed per id range), placed as the API places them."""
    rng = random.Random(first_id)
    if buckets:
        await store.increase_buckets(buckets)
    ids = range(first_id, first_id + subjects)
    await store.add_subjects([(i, rng.randint(1, 50)) for i in ids])


async def add_features(store: AsyncFlaggery, *names: str) -> None:
    for name in names:
        await store.add_feature(name)
        await store.add_variant("off", name, make_default=True)
        await store.add_variant("on", name)


async def weights(store: AsyncFlaggery) -> dict[int, int]:
    return {bucket.id: bucket.weight for bucket in (await store.get_buckets()).buckets}


def weight_of(bucket_weights: dict[int, int], buckets: set[int]) -> int:
    return sum(bucket_weights[bucket] for bucket in buckets)


async def test_rollouts_of_different_features_are_independent(store: AsyncFlaggery) -> None:
    # 0.2.1: alpha, beta and gamma at 10% all held the same ten buckets (202 subjects).
    await populate(store, 100, 2_000)
    await add_features(store, "alpha", "beta", "gamma")
    held = {}
    for feature in ("alpha", "beta", "gamma"):
        await store.add_rollout("on", feature)
        await store.set_rollout_proportion(feature, 0.1)
        held[feature] = set((await store.get_rollout(feature)).buckets)
    bucket_weights = await weights(store)
    for first, second in (("alpha", "beta"), ("beta", "gamma"), ("alpha", "gamma")):
        shared = weight_of(bucket_weights, held[first] & held[second])
        assert shared <= 0.3 * weight_of(bucket_weights, held[first])  # about 10%, never all
    assert not held["alpha"] & held["beta"] & held["gamma"]


async def test_tests_on_different_features_are_independent(
    store: AsyncFlaggery, clock: FakeClock
) -> None:
    # 0.2.1: group A of t1 was exactly group A of t2.
    await populate(store, 20, 200)
    await add_features(store, "alpha", "beta")
    start, end = clock.now + timedelta(days=1), clock.now + timedelta(days=8)
    for test, feature in (("t1", "alpha"), ("t2", "beta")):
        groups = {"A": {feature: "off"}, "B": {feature: "on"}}
        await store.add_abtest(test, start, end, groups)
    t1, t2 = await store.get_abtest("t1"), await store.get_abtest("t2")
    bucket_weights = await weights(store)
    agree = sum(
        weight_of(bucket_weights, set(g1.buckets) & set(g2.buckets))
        for g1, g2 in zip(t1.groups, t2.groups, strict=True)
    )
    assert 0.25 < agree / sum(bucket_weights.values()) < 0.75  # about half


async def test_splits_do_not_drift_when_buckets_come_one_by_one(
    store: AsyncFlaggery, clock: FakeClock
) -> None:
    # 0.2.1: the test split 75/25 and the rollout covered 25% of the weight.
    await assert_no_drift(store, clock, growth=[1] * 20, groups=2, proportion=0.5)


async def test_splits_do_not_drift_when_buckets_come_two_by_two(
    store: AsyncFlaggery, clock: FakeClock
) -> None:
    # 0.2.1: a three-group test became 42/42/15 and a 10% rollout 5%.
    await assert_no_drift(store, clock, growth=[2] * 10, groups=3, proportion=0.1)


async def assert_no_drift(
    store: AsyncFlaggery, clock: FakeClock, growth: list[int], groups: int, proportion: float
) -> None:
    """20 buckets and 200 subjects, a test of equal groups and a rollout; then the growth and
    200 new subjects: the rollout and each group of two stay within the largest bucket's
    weight of their target. A group of three is dealt by count within one bucket of its
    weight-corrected target (tests/engine/test_allocation.py), but how the new subjects fill
    the new buckets, and the old ones once they catch up, adds to that: in this example one
    group of three draws 6 of the 20 new buckets (its carry ends at 0.92, inside (-1, 1]) and
    ends 1.03 buckets under, so the bound checked for three or more is two buckets."""
    await populate(store, 20, 200)
    await add_features(store, "alpha", "beta")
    await store.add_rollout("on", "alpha")
    await store.set_rollout_proportion("alpha", proportion)
    variants = {f"g{i}": {"beta": "off" if i % 2 else "on"} for i in range(groups)}
    await store.add_abtest("t", None, clock.now + timedelta(days=30), variants)
    for amount in growth:
        await store.increase_buckets(amount)
    await populate(store, 0, 200, first_id=1_000)
    bucket_weights = await weights(store)
    total, largest = sum(bucket_weights.values()), max(bucket_weights.values())
    rollout = await store.get_rollout("alpha")
    assert abs(rollout.effective_weight - proportion * total) <= largest
    for group in (await store.get_abtest("t")).groups:
        error = abs(group.effective_weight - total / groups)
        assert error <= largest * max(1, groups - 1), group.name


async def test_lowering_and_raising_back_restores_the_same_buckets(store: AsyncFlaggery) -> None:
    # 0.2.1: 10% -> 5% -> 10% lost bucket 43 and gained 79; 26 of these 171 round trips failed.
    await populate(store, 100, 2_000)
    await add_features(store, "f")
    await store.add_rollout("on", "f")
    steps = [round(0.05 * i, 2) for i in range(1, 20)]
    for high in steps:
        await store.set_rollout_proportion("f", high)
        held = (await store.get_rollout("f")).buckets
        for low in (p for p in steps if p < high):
            await store.set_rollout_proportion("f", low)
            await store.set_rollout_proportion("f", high)
            assert (await store.get_rollout("f")).buckets == held, (high, low)


async def test_growth_logs_only_the_new_buckets_each_rollout_and_test_took(
    store: AsyncFlaggery, clock: FakeClock
) -> None:
    """One GrowthFact: the new range and, per rollout and test group, the new ids it took;
    never the buckets held before (which made the row grow with the database). A history
    filter keeps it for the features and tests it touched."""
    await populate(store, 50, 500)
    await add_features(store, "alpha", "beta", "gamma")
    await store.add_rollout("on", "alpha")
    await store.set_rollout_proportion("alpha", 0.9)
    groups = {"A": {"beta": "off"}, "B": {"beta": "on"}}
    await store.add_abtest("t", None, clock.now + timedelta(days=30), groups)
    new = await store.increase_buckets(10)
    (change,) = (await store.changes(after=await store.revision() - 1)).changes
    (fact,) = change.facts
    assert isinstance(fact, GrowthFact)
    assert (fact.first, fact.last) == (51, 60) and new == list(range(51, 61))
    assert set(fact.rollouts["alpha"]) == set((await store.get_rollout("alpha")).buckets) - set(
        range(1, 51)
    )
    test = await store.get_abtest("t")
    assert fact.abtests["t"].features == ("beta",)
    for group in test.groups:
        assert fact.abtests["t"].groups[group.name] == [b for b in group.buckets if b > 50]
    assert sorted(b for taken in fact.abtests["t"].groups.values() for b in taken) == new
    for filters in ({"feature": "alpha"}, {"feature": "beta"}, {"test": "t"}):
        assert (await store.changes(after=change.revision - 1, **filters)).changes  # type: ignore[arg-type]
    assert not (await store.changes(after=change.revision - 1, feature="gamma")).changes
