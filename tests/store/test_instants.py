"""A/B-test instants at and beyond the edges of the datetime range (issue 8, items 6 and 9)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from flaggery import errors
from flaggery.store.repository import AsyncFlaggery
from tests.fakes import FakeClock

GROUPS = {"a": {"f": "A"}, "b": {"f": "B"}}
LAST = datetime.max.replace(tzinfo=UTC)


async def _seed(store: AsyncFlaggery) -> None:
    await store.increase_buckets(2)
    await store.add_subjects([(1, 1), (2, 1)])
    await store.add_feature("f")
    await store.add_variant("A", "f", make_default=True)
    await store.add_variant("B", "f")


async def test_instants_whose_utc_value_leaves_the_range_name_the_field(
    store: AsyncFlaggery, clock: FakeClock
) -> None:
    await _seed(store)
    soon, later = clock.now + timedelta(hours=1), clock.now + timedelta(days=1)
    too_late = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(-timedelta(hours=23, minutes=59)))
    too_early = datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    revision = await store.revision()
    with pytest.raises(errors.ValidationError, match=r"^end .* outside the representable range"):
        await store.add_abtest("t", soon, too_late, GROUPS)
    with pytest.raises(errors.ValidationError, match=r"^start .* outside the representable range"):
        await store.add_abtest("t", too_early, later, GROUPS)
    assert await store.revision() == revision
    assert await store.list_abtests() == []


async def test_a_test_ending_at_the_last_instant_is_served(
    store: AsyncFlaggery, clock: FakeClock
) -> None:
    await _seed(store)
    await store.add_abtest("t", clock.now + timedelta(hours=1), LAST, GROUPS)
    assert (await store.get_abtest("t")).end == LAST
    assert await store.get_subject_variants(1) == {"f": "A"}
    clock.advance(days=365)
    variants = {(await store.get_subject_variants(i))["f"] for i in (1, 2)}
    assert variants == {"A", "B"}  # live: one subject in each test group
