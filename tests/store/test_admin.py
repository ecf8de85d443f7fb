"""AsyncFlaggery, method by method: results, errors, revisions and the change log."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import text

from flaggery import errors
from flaggery.engine.allocation import lightest_bucket
from flaggery.store.repository import AsyncFlaggery
from tests.dbcheck import check_invariants
from tests.fakes import FakeClock


async def invariants(store: AsyncFlaggery) -> None:
    async with store.database.read() as conn:
        await check_invariants(conn)


async def test_subjects_go_to_the_lightest_bucket_and_never_move(store: AsyncFlaggery) -> None:
    with pytest.raises(errors.NoBuckets, match="increase_buckets"):
        await store.add_subject(1, 5)
    assert await store.increase_buckets(3) == [1, 2, 3]
    assert [await store.add_subject(i, w) for i, w in [(1, 5), (2, 3), (3, 1), (4, 1)]] == [
        1,
        2,
        3,
        3,
    ]
    await store.set_subject_weight(1, 1)
    subject = await store.get_subject(1)
    assert (subject.id, subject.weight, subject.bucket_id, subject.groups) == (1, 1, 1, [])
    buckets = await store.get_buckets()
    assert (buckets.total_buckets, buckets.total_weight) == (3, 6)
    assert [(b.id, b.weight) for b in buckets.buckets] == [(1, 1), (2, 3), (3, 2)]
    await store.rm_subject(2)
    with pytest.raises(errors.SubjectNotFound):
        await store.get_subject(2)
    with pytest.raises(errors.SubjectExists):
        await store.add_subject(1, 1)
    await invariants(store)


async def test_bulk_add_is_all_or_nothing(store: AsyncFlaggery) -> None:
    await store.increase_buckets(7)
    assert len(await store.add_subjects([(i, i % 10 + 1) for i in range(100)])) == 100
    with pytest.raises(errors.SubjectExists):
        await store.add_subjects([(500, 1), (5, 1)])
    with pytest.raises(errors.ValidationError, match="more than once"):
        await store.add_subjects([(600, 1), (600, 2)])
    assert await store.revision() == 2  # the failed bulk adds wrote nothing
    with pytest.raises(errors.SubjectNotFound):
        await store.get_subject(500)
    await invariants(store)


@pytest.mark.parametrize("batch", [60, 7], ids=["one call", "in batches"])
async def test_bulk_placement_matches_sequential_placement(db_url: str, batch: int) -> None:
    """One call, or an import in batches (the last one short): placed as one by one."""
    weights = [(i, (i * 13) % 9 + 1) for i in range(60)]
    async with AsyncFlaggery.from_db_url(db_url) as store:
        await store.increase_buckets(5)
        bulk = []
        for start in range(0, len(weights), batch):
            bulk += await store.add_subjects(weights[start : start + batch])
        buckets = [(b.id, b.weight) for b in (await store.get_buckets()).buckets]
    loads = {b: 0 for b in range(1, 6)}
    sequential = []
    for _, weight in weights:
        bucket = lightest_bucket(loads)
        loads[bucket] += weight
        sequential.append(bucket)
    assert bulk == sequential
    assert buckets == sorted(loads.items())


async def test_argument_validation(store: AsyncFlaggery) -> None:
    await store.increase_buckets(1)
    for bad in (0, -2, 2**31, 1.5, True):
        with pytest.raises(errors.ValidationError, match="weight"):
            await store.add_subject(1, bad)  # type: ignore[arg-type]
    with pytest.raises(errors.ValidationError, match="64-bit"):
        await store.add_subject(2**63, 1)
    for bad_name in ("", "a/b", " x", "x" * 201, "tab\t"):
        with pytest.raises(errors.ValidationError):
            await store.add_feature(bad_name)
    with pytest.raises(errors.ValidationError, match="amount"):
        await store.increase_buckets(0)
    await store.add_feature("f")
    with pytest.raises(errors.ValidationError, match="add_disabling_variant"):
        await store.add_variant("__DISABLE__", "f")
    assert await store.revision() == 2


async def test_features_and_variants(store: AsyncFlaggery) -> None:
    await store.add_feature("checkout")
    with pytest.raises(errors.FeatureExists):
        await store.add_feature("checkout")
    await store.add_variant("A", "checkout")
    await store.add_disabling_variant("checkout", make_default=True)
    with pytest.raises(errors.VariantExists):
        await store.add_variant("A", "checkout")
    feature = await store.get_feature("checkout")
    assert (feature.name, feature.variants, feature.default_variant) == (
        "checkout",
        ["A", "__DISABLE__"],
        "__DISABLE__",
    )
    with pytest.raises(errors.VariantNotFound, match="Variants: 'A', '__DISABLE__'"):
        await store.set_default_feature_variant("checkout", "B")
    with pytest.raises(errors.VariantIsUsed, match="default"):
        await store.rm_variant("__DISABLE__", "checkout")
    await store.set_default_feature_variant("checkout", "A")
    await store.rm_variant("__DISABLE__", "checkout")
    assert await store.list_features() == ["checkout"]
    with pytest.raises(errors.FeatureNotFound):
        await store.get_feature("nope")


async def test_rollout_grows_and_shrinks_by_bucket(store: AsyncFlaggery) -> None:
    await store.increase_buckets(10)
    await store.add_subjects([(i, 1) for i in range(100)])
    await store.add_feature("f")
    await store.add_variant("A", "f")
    with pytest.raises(errors.RolloutNotFound):
        await store.get_rollout("f")
    await store.add_rollout("A", "f")
    with pytest.raises(errors.RolloutExists):
        await store.add_rollout("A", "f")
    sets = []
    for proportion in (0.3, 0.52, 1, 0.42, 0):
        await store.set_rollout_proportion("f", proportion)
        rollout = await store.get_rollout("f")
        assert rollout.proportion == proportion
        assert rollout.effective_weight == 10 * len(rollout.buckets)
        sets.append(set(rollout.buckets))
    assert [len(s) for s in sets] == [3, 5, 10, 4, 0]  # whole percents, not only 5% steps
    assert sets[0] <= sets[1] <= sets[2] and sets[3] <= sets[2]
    revision = await store.revision()
    await store.set_rollout_proportion("f", 0)  # the current value: a no-op, not an error
    assert await store.revision() == revision
    with pytest.raises(errors.InvalidRolloutProportion):
        await store.set_rollout_proportion("f", 1.5)
    await store.set_rollout_proportion("f", 1)
    assert (await store.increase_buckets(2)) == [11, 12]
    assert (await store.get_rollout("f")).buckets == list(range(1, 13))
    await invariants(store)


async def test_groups_and_override_order(store: AsyncFlaggery) -> None:
    await store.increase_buckets(2)
    await store.add_subject(42, 1)
    await store.add_feature("f")
    for variant in ("A", "B", "C"):
        await store.add_variant(variant, "f")
    await store.set_default_feature_variant("f", "A")
    await store.add_group("late")
    await store.add_group("early")
    await store.add_group_override("late", "f", "C")
    await store.add_group_override("early", "f", "B")
    await store.add_subject_to_group(42, "early")
    await store.add_subject_to_group(42, "late")
    assert await store.get_subject_variants(42) == {"f": "C"}  # the group joined last wins
    with pytest.raises(errors.SubjectAlreadyInGroup):
        await store.add_subject_to_group(42, "late")
    await store.rm_subject_from_group(42, "late")
    assert await store.get_subject_variants(42) == {"f": "B"}
    with pytest.raises(errors.SubjectNotInGroup):
        await store.rm_subject_from_group(42, "late")
    await store.add_group_override("early", "f", "C")  # replaces the override
    assert (await store.get_group("early")).overrides == {"f": "C"}
    with pytest.raises(errors.VariantIsUsed, match="override"):
        await store.rm_variant("C", "f")
    await store.rm_group("early")
    assert await store.get_subject_variants(42) == {"f": "A"}
    assert (await store.get_subject(42)).groups == []
    with pytest.raises(errors.GroupNotFound):
        await store.get_group("early")
    await store.rm_group_override("late", "f")
    with pytest.raises(errors.OverrideNotFound):
        await store.rm_group_override("late", "f")
    assert await store.list_groups() == ["late"]


async def test_abtest_lifecycle(store: AsyncFlaggery, clock: FakeClock) -> None:
    await store.increase_buckets(4)
    await store.add_subjects([(i, i % 3 + 1) for i in range(40)])
    await store.add_feature("f")
    await store.add_variant("A", "f", make_default=True)
    await store.add_variant("B", "f")
    start, end = clock.now + timedelta(days=1), clock.now + timedelta(days=2)
    groups = {"control": {"f": "A"}, "experiment": {"f": "B"}}
    await store.add_abtest("t", start, end, groups, [0.5, 0.5])
    test = await store.get_abtest("t")
    assert sorted(b for g in test.groups for b in g.buckets) == [1, 2, 3, 4]
    assert [g.name for g in test.groups] == ["control", "experiment"]
    assert sum(g.effective_weight for g in test.groups) == (await store.get_buckets()).total_weight
    assert await store.get_subject_variants(0) == {"f": "A"}  # not live yet
    clock.advance(days=1, hours=1)
    experiment = set(test.groups[1].buckets)
    for subject_id in range(40):
        expected = "B" if (await store.get_subject(subject_id)).bucket_id in experiment else "A"
        assert (await store.get_subject_variants(subject_id))["f"] == expected
    clock.advance(days=2)
    assert await store.get_subject_variants(0) == {"f": "A"}  # over
    assert await store.list_abtests() == ["t"]


async def test_abtest_validation(store: AsyncFlaggery, clock: FakeClock) -> None:
    await store.increase_buckets(2)
    await store.add_feature("f")
    await store.add_variant("A", "f")
    await store.add_variant("B", "f")
    soon, later = clock.now + timedelta(hours=1), clock.now + timedelta(days=1)
    ok = {"a": {"f": "A"}, "b": {"f": "B"}}
    cases = [
        ((later, soon, ok, None), errors.ValidationError),
        ((clock.now - timedelta(hours=1), later, ok, None), errors.ValidationError),
        ((soon, later, {"a": {"f": "A"}}, None), errors.ValidationError),
        ((soon, later, ok, [0.5, 0.6]), errors.ValidationError),
        ((soon, later, ok, [1.0]), errors.ValidationError),
        ((soon, later, {"a": {"f": "A"}, "b": {}}, None), errors.ValidationError),
        ((soon, later, {"a": {"f": "A"}, "b": {"f": "Z"}}, None), errors.VariantNotFound),
    ]
    for (start, end, groups, proportions), error in cases:
        with pytest.raises(error):
            await store.add_abtest("t", start, end, groups, proportions)
    await store.add_abtest("t", soon, later, ok)
    with pytest.raises(errors.AbTestExists):
        await store.add_abtest("t", soon, later, ok)
    with pytest.raises(errors.ValidationError, match="overlaps"):
        await store.add_abtest("t2", later - timedelta(hours=1), later + timedelta(days=1), ok)
    await store.add_abtest("t3", later + timedelta(hours=1), later + timedelta(days=1), ok)
    with pytest.raises(errors.AbTestNotFound):
        await store.get_abtest("nope")


async def test_naive_datetimes_are_local_time(store: AsyncFlaggery, clock: FakeClock) -> None:
    await store.increase_buckets(2)
    await store.add_feature("f")
    await store.add_variant("A", "f")
    await store.add_variant("B", "f")
    naive_start = datetime(2031, 6, 1, 12, 0)
    await store.add_abtest(
        "t",
        naive_start,
        naive_start + timedelta(days=1),
        {
            "a": {"f": "A"},
            "b": {"f": "B"},
        },
    )
    assert (await store.get_abtest("t")).start == naive_start.astimezone()


async def test_every_write_is_one_revision_and_one_change_row(store: AsyncFlaggery) -> None:
    await store.increase_buckets(2)
    await store.add_subject(1, 1)
    await store.add_feature("f")
    with pytest.raises(errors.FeatureExists):
        await store.add_feature("f")
    assert await store.revision() == 3
    async with store.database.read() as conn:
        rows = (await conn.execute(text("SELECT revision, operation FROM change_log"))).all()
    assert [tuple(r) for r in rows] == [
        (1, "increase_buckets"),
        (2, "add_subject"),
        (3, "add_feature"),
    ]


async def test_explain_sees_the_latest_write(store: AsyncFlaggery) -> None:
    await store.increase_buckets(2)
    await store.add_subject(1, 1)
    await store.add_feature("f")
    await store.add_variant("A", "f", make_default=True)
    assert (await store.explain(1)).features["f"].source == "default"
    await store.add_variant("B", "f")
    await store.add_rollout("B", "f")
    await store.set_rollout_proportion("f", 1.0)
    why = (await store.explain(1)).features["f"]
    assert (why.variant, why.source, why.proportion) == ("B", "rollout", 1.0)
    with pytest.raises(errors.SubjectNotFound):
        await store.explain(2)
