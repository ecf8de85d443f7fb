"""Filtered History reads the change_touches index (flaggery.store.change_index): it keeps
exactly what `ChangeFilter.keeps` keeps, pages correctly under filters however many other
writes follow, and migration 0017 fills the index for rows written before it. SQLite and
PostgreSQL."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from alembic import command
from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection

from flaggery.store import tables as t
from flaggery.store.audit_trail import ChangeFilter, ChangeRecord
from flaggery.store.database import Database
from flaggery.store.migrations import alembic_config, upgrade
from flaggery.store.repository import AsyncFlaggery
from flaggery.store.retention import Retention, prune_change_log
from tests.fakes import FakeClock

END = datetime(2040, 1, 1, tzinfo=UTC)
FILTERS = [
    ChangeFilter(feature="f1"),
    ChangeFilter(group="g0"),
    ChangeFilter(feature="f0", group="g1"),
    ChangeFilter(test="t"),
    ChangeFilter(subject=3),
    ChangeFilter(group="g1", subject=4),
    ChangeFilter(feature="nothing"),
]


async def _random_writes(store: AsyncFlaggery, seed: int) -> None:
    rng = random.Random(seed)
    await store.increase_buckets(3)
    await store.add_subjects([(i, 1) for i in range(1, 7)])
    for name in ("f0", "f1", "f2"):
        await store.add_feature(name)
        await store.add_variant("A", name, make_default=True)
        await store.add_variant("B", name)
    for name in ("g0", "g1"):
        await store.add_group(name)
    await store.add_abtest("t", None, END, {"a": {"f2": "A"}, "b": {"f2": "B"}})
    for _ in range(60):
        feature, group = rng.choice(("f0", "f1", "f2")), rng.choice(("g0", "g1"))
        match rng.randrange(5):
            case 0:
                await store.set_default_feature_variant(feature, rng.choice("AB"))
            case 1:
                await store.add_group_override(group, feature, rng.choice("AB"))
            case 2:
                subject = rng.randrange(1, 7)
                if group in (await store.get_subject(subject)).groups:
                    await store.rm_subject_from_group(subject, group)
                else:
                    await store.add_subject_to_group(subject, group)
            case 3:
                await store.set_subject_weight(rng.randrange(1, 7), rng.randrange(1, 9))
            case _:
                await store.increase_buckets(1)  # touches no name: no filter keeps it


async def _pages(store: AsyncFlaggery, keep: ChangeFilter, limit: int) -> list[list[int]]:
    pages, before = [], None
    while True:
        fields = {"feature": keep.feature, "group": keep.group, "test": keep.test}
        page = await store.history(before, limit, subject=keep.subject, **fields)
        pages.append([change.revision for change in page.changes])
        if page.older is None:
            return pages
        assert page.older == page.changes[-1].revision  # "Older" goes on below the last shown
        before = page.older


async def _expected(store: AsyncFlaggery, keep: ChangeFilter) -> list[int]:
    everything = (await store.history(None, 1000)).changes
    return [change.revision for change in everything if keep.keeps(change.facts)]


async def test_filtered_pages_keep_what_the_filter_keeps(store: AsyncFlaggery) -> None:
    await _random_writes(store, seed=21)
    for keep in FILTERS:
        expected = await _expected(store, keep)
        pages = await _pages(store, keep, limit=4)
        assert [revision for page in pages for revision in page] == expected, keep
        assert all(len(page) == 4 for page in pages[:-1])
    assert await _expected(store, ChangeFilter(feature="f1"))  # the filters are not all empty


async def test_a_filter_finds_its_write_behind_many_others(store: AsyncFlaggery) -> None:
    await store.add_feature("old")
    for number in range(300):
        await store.add_feature(f"later-{number}")
    page = await store.history(feature="old")
    assert [c.operation for c in page.changes] == ["add_feature"]
    assert page.older is None


async def test_pruning_drops_the_index_rows_of_the_pruned_writes(store: AsyncFlaggery) -> None:
    await _random_writes(store, seed=5)
    expected = await _expected(store, ChangeFilter(feature="f0"))
    await prune_change_log(store.database, Retention(revisions=20, days=0))
    oldest = await store.revision() - 19
    kept = [revision for revision in expected if revision >= oldest]
    assert kept != expected  # some of the feature's writes were pruned, some kept
    assert [c.revision for c in (await store.history(feature="f0")).changes] == kept
    async with store.database.read() as conn:
        indexed = (await conn.execute(select(func.min(t.change_touches.c.revision)))).scalar()
    assert indexed is not None and indexed >= oldest


def _downgrade_to_0016(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, "0016")


async def test_the_migration_fills_the_index_of_older_writes(db_url: str) -> None:
    async with AsyncFlaggery.from_db_url(db_url, clock=FakeClock()) as store:
        await _random_writes(store, seed=7)
        expected = {keep: await _pages(store, keep, limit=5) for keep in FILTERS}
    db = Database(db_url)
    try:
        async with db.engine.begin() as connection:
            await connection.execute(delete(t.change_touches))
            await connection.run_sync(_downgrade_to_0016)
        await upgrade(db.engine)
    finally:
        await db.dispose()
    async with AsyncFlaggery.from_db_url(db_url, clock=FakeClock()) as store:
        for keep, pages in expected.items():
            assert await _pages(store, keep, limit=5) == pages, keep


def _scanned_page(
    everything: list[ChangeRecord], after: int, limit: int, keep: ChangeFilter, head: int
) -> tuple[list[int], int]:
    """GET /v1/changes as it was before the index (filtered in Python over the rows after
    `after`, which here are fewer than its 10,000-row scan): the kept revisions and
    next_after."""
    kept = [c.revision for c in everything if c.revision > after and keep.keeps(c.facts)]
    page = kept[:limit]
    return page, (page[-1] if len(page) == limit else head)


async def test_filtered_changes_are_what_the_python_filter_answered(
    store: AsyncFlaggery,
) -> None:
    await _random_writes(store, seed=33)
    head = await store.revision()
    everything = (await store.changes(0, 1000)).changes
    assert len(everything) == head
    for keep in [*FILTERS, ChangeFilter()]:
        for limit in (1, 3, 1000):
            after = 0
            while True:
                fields = {"feature": keep.feature, "group": keep.group, "test": keep.test}
                page = await store.changes(after, limit, subject=keep.subject, **fields)
                expected, next_after = _scanned_page(everything, after, limit, keep, head)
                assert [c.revision for c in page.changes] == expected, (keep, after)
                assert page.changes == [c for c in everything if c.revision in expected]
                assert (page.next_after, page.head) == (next_after, head), (keep, after)
                if page.next_after >= head:
                    break
                after = page.next_after


async def test_a_filtered_changes_page_finds_its_write_behind_many_others(
    store: AsyncFlaggery,
) -> None:
    await store.add_feature("old")
    for number in range(300):
        await store.add_feature(f"later-{number}")
    await store.add_variant("A", "old")
    page = await store.changes(0, 10, feature="old")
    assert [c.operation for c in page.changes] == ["add_feature", "add_variant"]
    assert page.next_after == page.head == await store.revision()
