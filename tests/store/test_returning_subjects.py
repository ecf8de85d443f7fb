"""A subject removed and registered again gets its old bucket (issue 18, item 16), so it keeps
its A/B test arm: by add_subject, by add_subjects, within the stated 90 days; after them, or
after ``forget=True``, it is placed as new. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from flaggery.store import removed_subjects
from flaggery.store.removed_subjects import REMEMBERED_FOR
from flaggery.store.repository import AsyncFlaggery
from tests.dbcheck import check_invariants
from tests.fakes import FakeClock

GROUPS = {"control": {"f": "off"}, "treatment": {"f": "on"}}


async def _live_test(store: AsyncFlaggery, clock: FakeClock) -> dict[int, str]:
    await store.increase_buckets(20)
    await store.add_subjects([(i, 1) for i in range(1, 201)])
    await store.add_feature("f")
    await store.add_variant("on", "f")
    await store.add_variant("off", "f", make_default=True)
    await store.add_abtest("t", None, clock.now + timedelta(days=30), GROUPS)
    return {i: (await store.get_subject_variants(i))["f"] for i in range(1, 21)}


async def _buckets(store: AsyncFlaggery, ids: range) -> dict[int, int]:
    return {i: (await store.get_subject(i)).bucket_id for i in ids}


async def test_a_re_registered_subject_keeps_its_bucket_and_arm(
    store: AsyncFlaggery, clock: FakeClock
) -> None:
    """The issue's scenario: 20 subjects removed and registered again during a live test, one
    by one and in bulk, with other sign-ups in between that move the lightest bucket."""
    arms = await _live_test(store, clock)
    buckets = await _buckets(store, range(1, 21))
    for i in range(1, 21):
        await store.rm_subject(i)
    await store.add_subjects([(1000 + i, 3) for i in range(7)])  # newcomers in between
    clock.advance(days=10)
    for i in range(1, 11):
        assert await store.add_subject(i, weight=2) == buckets[i]
    placed = await store.add_subjects([(i, 1) for i in range(11, 21)] + [(2000, 1)])
    assert placed[:10] == [buckets[i] for i in range(11, 21)]
    assert await _buckets(store, range(1, 21)) == buckets
    assert {i: (await store.get_subject_variants(i))["f"] for i in range(1, 21)} == arms
    async with store.database.read() as conn:
        await check_invariants(conn)  # bucket weights still add up
    # Used once: removed and added again without a removal in between, it is placed as new.
    await store.rm_subject(2000)
    await store.add_subject(2000)


async def test_after_the_retention_or_with_forget_it_is_placed_as_new(
    store: AsyncFlaggery, clock: FakeClock
) -> None:
    await store.increase_buckets(2)
    await store.add_subjects([(1, 1), (2, 1)])  # bucket 1 and bucket 2
    await store.rm_subject(1)
    await store.add_subjects([(3, 5)])  # bucket 1 now the heavier one
    clock.advance(days=REMEMBERED_FOR.days, seconds=1)
    assert await store.add_subject(1) == 2  # forgotten: the lightest bucket
    await store.rm_subject(2, forget=True)
    assert await store.add_subject(2) == 2  # forgotten at once: the lightest again
    await store.rm_subject(1)  # remembered in bucket 2
    assert await store.add_subject(4, weight=10) == 2  # bucket 1 is the lightest now
    clock.advance(days=REMEMBERED_FOR.days - 1)
    assert await store.add_subject(1) == 2  # within the retention: its bucket


async def test_a_bulk_add_larger_than_the_id_lookup_reads_the_memory_whole(
    store: AsyncFlaggery, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(removed_subjects, "_IN_LIST", 3)  # as 10,000 ids would
    await store.increase_buckets(3)
    await store.add_subjects([(1, 1), (2, 1), (3, 1)])  # buckets 1, 2, 3
    await store.rm_subject(1)
    await store.rm_subject(3)
    await store.add_subjects([(9, 5)])  # bucket 1, now the heaviest
    placed = await store.add_subjects([(10, 1), (3, 1), (11, 1), (12, 1)])
    assert placed[1] == 3  # subject 3 back in its bucket
    assert await store.add_subject(1) == 1  # not in that batch: still remembered
