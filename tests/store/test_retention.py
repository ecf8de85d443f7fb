"""A bounded change log (issue 8, item 13): pruning by revisions and by age, replicas behind
the retained range reload fully, and a very large write is logged as one reload fact."""

from __future__ import annotations

import random
from array import array

import pytest
from sqlalchemy import func, select

from flaggery.engine.model import ReloadFact, SubjectsFact, decode_facts, encode_facts
from flaggery.store import database
from flaggery.store import tables as t
from flaggery.store.replica import Replica
from flaggery.store.repository import AsyncFlaggery
from flaggery.store.retention import Retention, prune_change_log
from flaggery.store.subjects import admin as subjects_admin
from tests.dbcheck import naive_variants_all
from tests.fakes import FakeClock


async def _assert_matches_database(
    replica: Replica, store: AsyncFlaggery, clock: FakeClock
) -> None:
    async with store.database.read() as conn:
        expected = await naive_variants_all(conn, clock.now)
    snapshot = replica.snapshot
    assert {subject: dict(snapshot.variants(subject)) for subject in expected} == expected


async def _logged_revisions(store: AsyncFlaggery) -> list[int]:
    async with store.database.read() as conn:
        query = select(t.change_log.c.revision).order_by(t.change_log.c.revision)
        return list((await conn.execute(query)).scalars())


async def _features(store: AsyncFlaggery, names: range) -> None:
    for number in names:
        await store.add_feature(f"f{number}")


async def test_prune_keeps_the_last_revisions(store: AsyncFlaggery) -> None:
    await _features(store, range(10))
    assert await prune_change_log(store.database, Retention(revisions=3)) == 7
    assert await _logged_revisions(store) == [8, 9, 10]
    assert await store.revision() == 10  # pruning changes no state
    assert await prune_change_log(store.database, Retention(revisions=0, days=0)) == 0


async def test_prune_by_age_keeps_the_latest_row(store: AsyncFlaggery, clock: FakeClock) -> None:
    await _features(store, range(3))
    clock.advance(days=2)
    await _features(store, range(3, 5))
    retention = Retention(revisions=0, days=1)
    assert await prune_change_log(store.database, retention) == 3
    assert await _logged_revisions(store) == [4, 5]
    clock.advance(days=10)
    assert await prune_change_log(store.database, retention) == 1
    assert await _logged_revisions(store) == [5]  # the latest row always stays


async def test_a_replica_behind_the_retained_range_reloads(
    store: AsyncFlaggery, clock: FakeClock
) -> None:
    await store.increase_buckets(2)
    await store.add_subjects([(1, 1), (2, 1)])
    replica = Replica(store.database, clock)  # no feed: it looks only when told to
    await replica.reload()
    full = replica.counts.full
    await _features(store, range(5))
    await store.add_variant("on", "f3", make_default=True)
    await prune_change_log(store.database, Retention(revisions=2))
    assert await replica.refresh()
    assert replica.counts.full == full + 1
    assert replica.revision == await store.revision()
    assert replica.snapshot.variants(1) == {"f3": "on"}
    await _assert_matches_database(replica, store, clock)
    incremental = replica.counts.incremental
    await store.add_feature("after")  # within the range again: patched, not reloaded
    assert await replica.refresh()
    assert (replica.counts.incremental, replica.counts.full) == (incremental + 1, full + 1)


async def test_a_very_large_write_is_logged_as_a_reload(
    store: AsyncFlaggery, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "MAX_LOGGED_FACTS", 20)
    monkeypatch.setattr(subjects_admin, "MAX_PATCHED_SUBJECTS", 50)
    await store.increase_buckets(2)
    replica = Replica(store.database, clock)
    await replica.reload()
    full = replica.counts.full
    await store.add_subjects([(i, 1) for i in range(51)])
    async with store.database.read() as conn:
        payload = (
            await conn.execute(
                select(t.change_log.c.payload).where(
                    t.change_log.c.revision
                    == select(func.max(t.change_log.c.revision)).scalar_subquery()
                )
            )
        ).scalar_one()
    assert decode_facts(payload) == (ReloadFact(51),)
    assert await replica.refresh()
    assert (replica.counts.full, replica.revision, replica.snapshot.subject_count) == (
        full + 1,
        2,
        51,
    )
    await store.add_subjects([(i, 1) for i in range(100, 150)])  # one SubjectsFact: patched
    await store.add_subjects([(i, 1) for i in range(200, 220)])  # 20 facts: patched
    assert await replica.refresh()
    assert replica.counts.full == full + 1
    await _assert_matches_database(replica, store, clock)


async def test_the_real_bounds_turn_a_bulk_add_into_one_fact(store: AsyncFlaggery) -> None:
    """At the shipped bounds: 10,000 subjects are logged fact by fact, 10,001 as one
    SubjectsFact holding them all, in the order given, with their buckets."""
    await store.increase_buckets(2)
    await store.add_subjects([(i, 1) for i in range(database.MAX_LOGGED_FACTS)])
    pairs = [(-i, i % 7 + 1) for i in range(1, database.MAX_LOGGED_FACTS + 2)]
    placed = await store.add_subjects(pairs)
    async with store.database.read() as conn:
        query = select(t.change_log.c.payload).order_by(t.change_log.c.revision)
        payloads = list((await conn.execute(query)).scalars())
    assert len(payloads[1]) <= database.MAX_LOGGED_BYTES
    assert len(decode_facts(payloads[1])) == database.MAX_LOGGED_FACTS
    (bulk,) = decode_facts(payloads[2])
    assert isinstance(bulk, SubjectsFact)
    ids, weights, buckets = bulk.columns()
    assert list(zip(ids, weights, strict=True)) == pairs and list(buckets) == placed


def test_the_largest_patched_bulk_add_fits_a_change_log_row() -> None:
    """MAX_PATCHED_SUBJECTS subjects with random ids, weights and buckets (columns that do
    not compress) encode within MAX_LOGGED_BULK_BYTES, so such an add is never turned into a
    reload by its size."""
    rng = random.Random(25)
    count = subjects_admin.MAX_PATCHED_SUBJECTS
    ids, weights, buckets = (
        array("q", (rng.randrange(low, high) for _ in range(count)))
        for low, high in ((-(2**63), 2**63), (1, 2**31), (1, 2**31))
    )
    fact = SubjectsFact.of(ids, weights, buckets)
    assert len(encode_facts([fact])) <= database.MAX_LOGGED_BULK_BYTES
    assert fact.columns() == (ids, weights, buckets)
