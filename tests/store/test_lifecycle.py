"""The experiment lifecycle: stop and delete tests, remove rollouts, retire features, start
tests now; each one transaction with one revision and one change-log row."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from flaggery import errors
from flaggery.store import tables as t
from flaggery.store.repository import AsyncFlaggery
from tests.dbcheck import check_invariants
from tests.fakes import FakeClock

GROUPS = {"control": {"f": "off"}, "treatment": {"f": "on"}}


async def seed(store: AsyncFlaggery) -> None:
    await store.increase_buckets(10)
    await store.add_subjects([(i, i % 5 + 1) for i in range(100)])
    await store.add_feature("f")
    await store.add_variant("on", "f")
    await store.add_variant("off", "f", make_default=True)


async def change_log_rows(store: AsyncFlaggery) -> int:
    async with store.database.read() as conn:
        rows = await conn.execute(select(func.count()).select_from(t.change_log))
        return int(rows.scalar_one())


async def assert_one_write(store: AsyncFlaggery, revision: int, rows: int) -> None:
    assert await store.revision() == revision + 1
    assert await change_log_rows(store) == rows + 1
    async with store.database.read() as conn:
        await check_invariants(conn)


async def test_stop_a_live_test_then_delete_it(store: AsyncFlaggery, clock: FakeClock) -> None:
    await seed(store)
    await store.add_abtest("t", None, clock.now + timedelta(days=7), GROUPS)
    assert (await store.get_abtest("t")).start == clock.now
    with pytest.raises(errors.AbTestIsLive, match="stop_abtest"):
        await store.rm_abtest("t")
    clock.advance(hours=1)
    revision, rows = await store.revision(), await change_log_rows(store)
    await store.stop_abtest("t")
    await assert_one_write(store, revision, rows)
    stopped = await store.get_abtest("t")
    assert stopped.end == clock.now - timedelta(microseconds=1)
    assert sorted(b for g in stopped.groups for b in g.buckets) == list(range(1, 11))
    assert await store.get_subject_variants(1) == {"f": "off"}  # back to the default at once
    with pytest.raises(errors.AbTestNotLive):
        await store.stop_abtest("t")
    await store.rm_abtest("t")
    assert await store.list_abtests() == []
    with pytest.raises(errors.AbTestNotFound):
        await store.rm_abtest("t")


async def test_a_future_test_can_be_deleted_but_not_stopped(
    store: AsyncFlaggery, clock: FakeClock
) -> None:
    await seed(store)
    await store.add_abtest(
        "t", clock.now + timedelta(days=1), clock.now + timedelta(days=2), GROUPS
    )
    with pytest.raises(errors.AbTestNotLive, match="rm_abtest"):
        await store.stop_abtest("t")
    revision, rows = await store.revision(), await change_log_rows(store)
    await store.rm_abtest("t")
    await assert_one_write(store, revision, rows)


@pytest.mark.parametrize("ago", [timedelta(0), timedelta(seconds=1), timedelta(minutes=5)])
async def test_a_start_in_the_recent_past_means_now(
    store: AsyncFlaggery, clock: FakeClock, ago: timedelta
) -> None:
    await seed(store)
    await store.add_abtest("t", clock.now - ago, clock.now + timedelta(days=1), GROUPS)
    assert (await store.get_abtest("t")).start == clock.now


async def test_a_start_far_in_the_past_is_refused(store: AsyncFlaggery, clock: FakeClock) -> None:
    await seed(store)
    revision = await store.revision()
    past = clock.now - timedelta(minutes=5, seconds=1)
    with pytest.raises(errors.ValidationError, match="in the past"):
        await store.add_abtest("t", past, clock.now + timedelta(days=1), GROUPS)
    with pytest.raises(errors.ValidationError, match="before end"):
        await store.add_abtest("t", None, clock.now - timedelta(seconds=1), GROUPS)
    assert await store.revision() == revision


async def test_remove_a_rollout(store: AsyncFlaggery) -> None:
    await seed(store)
    await store.add_rollout("on", "f")
    await store.set_rollout_proportion("f", 0.5)
    revision, rows = await store.revision(), await change_log_rows(store)
    await store.rm_rollout("f")
    await assert_one_write(store, revision, rows)
    with pytest.raises(errors.RolloutNotFound):
        await store.get_rollout("f")
    assert {(await store.get_subject_variants(i))["f"] for i in range(100)} == {"off"}
    with pytest.raises(errors.RolloutNotFound):
        await store.rm_rollout("f")
    await store.add_rollout("on", "f")  # and it can be created again


async def test_set_rollout_variant_and_proportion_in_one_transaction(
    store: AsyncFlaggery,
) -> None:
    await seed(store)
    await store.add_variant("new", "f")
    await store.add_rollout("on", "f")
    revision, rows = await store.revision(), await change_log_rows(store)
    await store.set_rollout("f", "new", 0.5)
    await assert_one_write(store, revision, rows)
    rollout = await store.get_rollout("f")
    assert (rollout.variant, rollout.proportion) == ("new", 0.5)
    revision = await store.revision()
    # Either part refused: nothing changes, not even the other part.
    with pytest.raises(errors.VariantNotFound):
        await store.set_rollout("f", "nope", 0.9)
    with pytest.raises(errors.InvalidRolloutProportion):
        await store.set_rollout("f", "on", 1.5)
    with pytest.raises(errors.ValidationError, match="or several"):
        await store.set_rollout("f")
    assert await store.revision() == revision
    assert (await store.get_rollout("f")).variant == "new"


async def test_a_variant_used_only_by_ended_tests_can_be_removed(
    store: AsyncFlaggery, clock: FakeClock
) -> None:
    await seed(store)
    await store.add_variant("blue", "f")
    groups = {"control": {"f": "off"}, "treatment": {"f": "blue"}}
    await store.add_abtest("t", None, clock.now + timedelta(days=1), groups)
    with pytest.raises(errors.VariantIsUsed, match="A/B test 't'"):
        await store.rm_variant("blue", "f")
    clock.advance(days=2)
    await store.rm_variant("blue", "f")
    assert (await store.get_feature("f")).variants == ["off", "on"]
    ended = await store.get_abtest("t")  # the ended test keeps its record
    assert [g.variants for g in ended.groups] == [{"f": "off"}, {"f": "blue"}]


async def test_retire_a_feature(store: AsyncFlaggery, clock: FakeClock) -> None:
    await seed(store)
    await store.add_rollout("on", "f")
    await store.add_group("staff")
    await store.add_group_override("staff", "f", "on")
    end = clock.now + timedelta(days=1)
    await store.add_abtest("t", clock.now + timedelta(hours=1), end, GROUPS)
    with pytest.raises(errors.FeatureHasChildren) as refused:
        await store.rm_feature("f")
    message = str(refused.value)
    assert "rollout" in message and "'t'" in message and "staff" in message
    await store.rm_rollout("f")
    await store.rm_group_override("staff", "f")
    clock.advance(hours=2)  # the test is live now
    with pytest.raises(errors.FeatureHasChildren, match="A/B tests"):
        await store.rm_feature("f")
    clock.advance(days=1)  # ended: it no longer holds the feature
    revision, rows = await store.revision(), await change_log_rows(store)
    await store.rm_feature("f")
    await assert_one_write(store, revision, rows)
    assert await store.list_features() == []
    assert await store.get_subject_variants(1) == {}
    assert (await store.get_abtest("t")).groups[1].variants == {"f": "on"}
    await store.add_feature("f")  # the name is free again, with no variants
    assert (await store.get_feature("f")).variants == []


async def test_a_preview_is_the_weight_the_move_lands_on(store: AsyncFlaggery) -> None:
    """The dashboard's preview: exactly what set_rollout_proportion then chooses, no write."""
    await seed(store)
    await store.add_rollout("on", "f")
    for proportion in (0.3, 0.75, 0.1):
        revision = await store.revision()
        preview = await store.preview_rollout_proportion("f", proportion)
        assert await store.revision() == revision
        await store.set_rollout_proportion("f", proportion)
        assert (await store.get_rollout("f")).effective_weight == preview
