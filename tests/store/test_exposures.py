"""Exposure counting and test health through the store, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from flaggery import errors
from flaggery.engine.exposure_tally import ExposureTally
from flaggery.engine.exposures import Exposure
from flaggery.store.exposures import flush_tally, read_assignment_counts
from flaggery.store.repository import AsyncFlaggery
from tests.fakes import FakeClock

GROUPS = {"control": {"f": "off"}, "treatment": {"f": "on"}}


async def seed(store: AsyncFlaggery, clock: FakeClock) -> dict[int, str]:
    """Ten buckets, 100 subjects, a live test; returns subject id -> assigned test group."""
    await store.increase_buckets(10)
    await store.add_subjects([(i, 1) for i in range(100)])
    await store.add_feature("f")
    await store.add_variant("on", "f")
    await store.add_variant("off", "f", make_default=True)
    await store.add_abtest("t", None, clock.now + timedelta(days=7), GROUPS)
    holder = {b: g.name for g in (await store.get_abtest("t")).groups for b in g.buckets}
    return {i: holder[(await store.get_subject(i)).bucket_id] for i in range(100)}


def seen(key: str | int, group: str, clock: FakeClock, test: str = "t") -> Exposure:
    return Exposure(str(key), test, group, clock.now)


async def test_first_exposures_are_counted_per_reported_group(
    store: AsyncFlaggery, clock: FakeClock
) -> None:
    assigned = await seed(store, clock)
    await store.record_exposures([seen(i, assigned[i], clock) for i in range(60)])
    await store.record_exposures([seen(i, assigned[i], clock) for i in range(50, 100)])
    health = await store.abtest_health("t")
    (subjects,) = health.populations
    assert subjects.exposures == 100
    expected = {name: sum(1 for g in assigned.values() if g == name) for name in GROUPS}
    assert {g.name: g.exposures for g in subjects.groups} == expected
    assert {g.name: g.expected_share for g in subjects.groups} == pytest.approx(
        {name: count / 100 for name, count in expected.items()}
    )
    assert (health.repeats, health.misassigned, health.early, health.late) == (10, 0, 0, 0)
    assert health.multiple_exposures  # 10 repeats in 110 exposures
    assert sum(b.exposures for b in health.buckets) == 100
    assert sum(b.expected for b in health.buckets) == pytest.approx(100)
    assert health.state == "green"


async def test_repeats_in_one_batch_misassignments_and_the_window(
    store: AsyncFlaggery, clock: FakeClock
) -> None:
    assigned = await seed(store, clock)
    wrong = "treatment" if assigned[1] == "control" else "control"
    await store.record_exposures(
        [
            seen(0, assigned[0], clock),
            seen(0, assigned[0], clock),
            seen(1, wrong, clock),
            Exposure("2", "t", assigned[2], clock.now - timedelta(days=1)),
            Exposure("3", "t", assigned[3], clock.now + timedelta(days=8)),
        ]
    )
    health = await store.abtest_health("t")
    counts = {g.name: g.exposures for g in health.populations[0].groups}
    assert counts[wrong] >= 1 and sum(counts.values()) == 2
    assert (health.repeats, health.misassigned, health.early, health.late) == (1, 1, 1, 1)
    clock.advance(days=2)  # subject 2 is exposed again, now inside the window: a first
    await store.record_exposures([seen(2, assigned[2], clock)])
    assert (await store.abtest_health("t")).populations[0].exposures == 3


async def test_hashed_keys_are_their_own_population(store: AsyncFlaggery, clock: FakeClock) -> None:
    await seed(store, clock)
    snapshot_groups = {}
    for key in ("alice@example.com", "bob", "carol"):
        explained = await store.explain_key(key)
        snapshot_groups[key] = explained.features["f"].variant
    holder = {"off": "control", "on": "treatment"}
    await store.record_exposures(
        [seen(key, holder[variant], clock) for key, variant in snapshot_groups.items()]
    )
    health = await store.abtest_health("t")
    keys = next(p for p in health.populations if p.population == "keys")
    assert keys.exposures == 3
    assert {g.expected_share for g in keys.groups} == {0.5}
    assert health.misassigned == 0


async def test_a_bad_exposure_counts_nothing_of_its_batch(
    store: AsyncFlaggery, clock: FakeClock
) -> None:
    assigned = await seed(store, clock)
    good = seen(0, assigned[0], clock)
    with pytest.raises(errors.AbTestNotFound):
        await store.record_exposures([good, seen(1, "control", clock, test="nope")])
    with pytest.raises(errors.ValidationError, match="Groups: 'control', 'treatment'"):
        await store.record_exposures([good, seen(1, "placebo", clock)])
    with pytest.raises(errors.InvalidTargetingKey):
        await store.record_exposures([good, seen("", "control", clock)])
    naive = Exposure("1", "t", assigned[1], clock.now.replace(tzinfo=None))  # was a TypeError
    with pytest.raises(errors.ValidationError, match="timestamp must be an aware datetime"):
        await store.record_exposures([good, naive])
    assert (await store.abtest_health("t")).populations[0].exposures == 0
    with pytest.raises(errors.AbTestNotFound):
        await store.abtest_health("nope")


async def test_deleting_a_test_forgets_its_exposures_and_assignments(
    store: AsyncFlaggery, clock: FakeClock
) -> None:
    assigned = await seed(store, clock)
    await store.record_exposures([seen(0, assigned[0], clock)])
    await flush_tally(store.database, ExposureTally(), {("t", "control"): 5})
    assert await read_assignment_counts(store.database, "t") == {"control": 5}
    await flush_tally(store.database, ExposureTally(), {("t", "control"): 2})
    assert (await store.abtest_health("t")).assignments == {"control": 7, "treatment": 0}
    await store.stop_abtest("t")
    clock.advance(hours=1)
    await store.rm_abtest("t")
    await store.add_abtest("t", None, clock.now + timedelta(days=7), GROUPS)
    holder = {b: g.name for g in (await store.get_abtest("t")).groups for b in g.buckets}
    group = holder[(await store.get_subject(0)).bucket_id]
    await store.record_exposures([seen(0, group, clock)])
    health = await store.abtest_health("t")
    assert (health.populations[0].exposures, health.repeats) == (1, 0)
    assert health.assignments == {"control": 0, "treatment": 0}


async def test_a_stale_client_showing_one_group_to_everyone_turns_red(
    store: AsyncFlaggery, clock: FakeClock
) -> None:
    assigned = await seed(store, clock)
    await store.record_exposures([seen(i, "control", clock) for i in range(100)])
    health = await store.abtest_health("t")
    assert health.state == "red"
    assert health.misassigned == sum(1 for g in assigned.values() if g == "treatment") > 0
    assert health.populations[0].sequential_p < 0.001
