"""History filters see removals (issue 18, item 17): every removal records what it removed,
so `changes(feature=..., group=..., test=..., subject=...)` keeps it. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from flaggery.store.repository import AsyncFlaggery
from tests.fakes import FakeClock


async def _operations(store: AsyncFlaggery, after: int, **name: str | int) -> list[str]:
    page = await store.changes(after, 1000, **name)  # type: ignore[arg-type]
    return [change.operation for change in page.changes]


async def _seed(store: AsyncFlaggery, clock: FakeClock) -> int:
    await store.increase_buckets(2)
    await store.add_subjects([(1, 1), (2, 1), (3, 1)])
    for feature in ("checkout", "layout"):
        await store.add_feature(feature)
        await store.add_variant("A", feature, make_default=True)
        await store.add_variant("B", feature)
    await store.add_rollout("B", "checkout")
    for group in ("g1", "g2"):
        await store.add_group(group)
        await store.add_group_override(group, "checkout", "B")
    for subject in (1, 2):
        await store.add_subject_to_group(subject, "g1")
        await store.add_subject_to_group(subject, "g2")
    groups = {"control": {"layout": "A"}, "treatment": {"layout": "B"}}
    start = clock.now + timedelta(days=1)
    await store.add_abtest("t", start, start + timedelta(days=1), groups)
    return await store.revision()


async def test_every_removal_is_seen_by_every_filter_it_touches(
    store: AsyncFlaggery, clock: FakeClock
) -> None:
    after = await _seed(store, clock)
    await store.rm_group_override("g2", "checkout")
    await store.rm_subject_from_group(2, "g2")
    await store.rm_subject(1)
    await store.rm_group("g1")
    await store.rm_abtest("t")
    await store.rm_rollout("checkout")
    await store.rm_variant("B", "layout")
    await store.rm_feature("layout")

    assert await _operations(store, after, feature="checkout") == [
        "rm_group_override",  # g2's override of checkout
        "rm_group",  # g1 with its override of checkout
        "rm_rollout",
    ]
    assert await _operations(store, after, feature="layout") == [
        "rm_abtest",  # t set layout
        "rm_variant",
        "rm_feature",
    ]
    assert await _operations(store, after, group="g2") == [
        "rm_group_override",
        "rm_subject_from_group",  # subject 2 left g2
        "rm_subject",  # subject 1, a member of g2, removed
    ]
    # A write about a member is about its groups (subject 2 is still in g1).
    assert await _operations(store, after, group="g1") == [
        "rm_subject_from_group",
        "rm_subject",
        "rm_group",
    ]
    assert await _operations(store, after, subject=1) == ["rm_subject"]
    assert await _operations(store, after, subject=2) == ["rm_subject_from_group", "rm_group"]
    assert await _operations(store, after, test="t") == ["rm_abtest"]
    assert await _operations(store, after, feature="checkout", group="g1") == ["rm_group"]
