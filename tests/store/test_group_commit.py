"""Group commit: concurrent writes share a transaction, keep their own revisions and errors,
and none is acknowledged unless the batch commits (flaggery.store.group_commit)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import event, select

from flaggery import errors
from flaggery.engine.model import Subject, SubjectFact
from flaggery.store import database
from flaggery.store import tables as t
from flaggery.store.database import read_head
from flaggery.store.group_commit import GroupCommit
from flaggery.store.replica import Replica
from flaggery.store.repository import AsyncFlaggery
from flaggery.store.subjects import admin as subjects_admin
from tests.dbcheck import check_invariants, naive_variants_all
from tests.fakes import FakeClock


async def outcomes(*writes: Awaitable[Any]) -> list[Any]:
    """Start every write before any runs (one batch), in this order; results or errors."""
    return list(await asyncio.gather(*writes, return_exceptions=True))


async def logged(store: AsyncFlaggery, after: int = 0) -> list[tuple[int, str]]:
    page = await store.changes(after, 1000)
    return [(change.revision, change.operation) for change in page.changes]


async def test_concurrent_writes_land_in_arrival_order_with_their_own_revisions(
    store: AsyncFlaggery,
) -> None:
    await store.increase_buckets(4)
    weights = [(i, i % 7 + 1) for i in range(1, 41)]
    buckets = await outcomes(*(store.add_subject(i, w) for i, w in weights))
    # Placed exactly as one-by-one writes in arrival order would place them.
    expected: dict[int, int] = dict.fromkeys(range(1, 5), 0)
    for _, weight in weights:
        bucket = min(expected, key=lambda b: (expected[b], b))
        assert buckets.pop(0) == bucket
        expected[bucket] += weight
    assert await store.revision() == 41
    assert await logged(store, 1) == [(r, "add_subject") for r in range(2, 42)]
    page = await store.changes(1, 1000)
    assert [c.facts[0].id for c in page.changes] == [i for i, _ in weights]  # type: ignore[union-attr]
    async with store.database.read() as conn:
        await check_invariants(conn)


async def test_a_refused_write_fails_alone_and_takes_no_revision(store: AsyncFlaggery) -> None:
    await store.increase_buckets(2)
    await store.add_subject(7, 1)
    results = await outcomes(
        store.add_subject(1, 3),
        store.add_subject(1, 4),  # the write just before it in the batch added 1
        store.add_group("g"),  # a write of another kind, between planned ones
        store.add_subject_to_group(1, "g"),  # sees the group created in the same batch
        store.set_subject_weight(99, 2),
        store.add_group("g"),
        store.set_subject_weight(7, 1),  # a no-op: succeeds, takes no revision
        store.rm_subject_from_group(7, "g"),
        store.set_subject_weight(1, 5),
    )
    assert results[0] == 2  # subject 7 holds bucket 1
    assert isinstance(results[1], errors.SubjectExists)
    assert results[2:4] == [None, None]
    assert isinstance(results[4], errors.SubjectNotFound)
    assert isinstance(results[5], errors.GroupExists)
    assert results[6] is None
    assert isinstance(results[7], errors.SubjectNotInGroup)
    assert results[8] is None
    assert await logged(store, 2) == [
        (3, "add_subject"),
        (4, "add_group"),
        (5, "add_subject_to_group"),
        (6, "set_subject_weight"),
    ]
    subject = await store.get_subject(1)
    assert (subject.weight, subject.groups) == (5, ["g"])
    page = await store.changes(5, 1)
    assert page.changes[0].facts == (SubjectFact(1, Subject(5, subject.bucket_id, ("g",))),)
    async with store.database.read() as conn:
        await check_invariants(conn)


async def test_one_subject_changed_many_times_in_one_batch(store: AsyncFlaggery) -> None:
    await store.increase_buckets(3)
    await store.add_group("a")
    await store.add_group("b")
    await outcomes(
        store.add_subject(5, 2),
        store.add_subject_to_group(5, "a"),
        store.add_subject_to_group(5, "b"),
        store.rm_subject_from_group(5, "a"),
        store.set_subject_weight(5, 9),
        store.add_subject_to_group(5, "a"),  # joins again: last, with this write's revision
    )
    subject = await store.get_subject(5)
    assert (subject.weight, subject.groups) == (9, ["b", "a"])
    async with store.database.read() as conn:
        members = (await conn.execute(select(t.group_members).order_by("joined"))).all()
        await check_invariants(conn)
    assert [(m.group, m.joined) for m in members] == [("b", 6), ("a", 9)]
    assert (await store.get_buckets()).total_weight == 9


async def test_a_failed_commit_acknowledges_nobody(
    store: AsyncFlaggery, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.increase_buckets(2)
    await store.add_subject(1, 1)
    before = await store.revision()
    appended = database._append_changes

    async def connection_lost(batch: database.Batch, *, notify: bool) -> None:
        await appended(batch, notify=notify)
        raise OSError("connection lost")  # after the writes: only the commit is missing

    monkeypatch.setattr(database, "_append_changes", connection_lost)
    results = await outcomes(
        store.add_subject(2, 1),
        store.add_subject(1, 1),  # refused on its own, but judged on a state that is lost
        store.add_group("g"),
        store.set_subject_weight(1, 3),
    )
    assert all(isinstance(r, errors.DatabaseUnavailable) for r in results), results
    monkeypatch.undo()
    assert await store.revision() == before
    with pytest.raises(errors.SubjectNotFound):
        await store.get_subject(2)
    assert (await store.get_subject(1)).weight == 1
    assert await store.list_groups() == []
    # The next batch works.
    assert await store.add_subject(2, 1) in (1, 2)
    assert await store.revision() == before + 1


class _FakeBatch:
    def __init__(self) -> None:
        self.log: list[str] = []


async def test_a_write_cancelled_before_its_turn_does_not_stall_the_batch() -> None:
    opened: list[_FakeBatch] = []

    @asynccontextmanager
    async def begin() -> AsyncIterator[_FakeBatch]:
        batch = _FakeBatch()
        opened.append(batch)
        yield batch
        batch.log.append("commit")

    async def apply(batch: _FakeBatch, plans: Sequence[str]) -> list[str]:
        batch.log.extend(plans)
        return [plan.upper() for plan in plans]

    commits: GroupCommit[_FakeBatch, str, str] = GroupCommit(begin, apply)
    release = asyncio.Event()

    async def slow_write() -> None:
        async with commits.turn() as batch:
            batch.log.append("slow")
            await release.wait()

    async def cancelled_write() -> None:
        async with commits.turn() as batch:
            batch.log.append("never")

    first = asyncio.create_task(slow_write())
    await asyncio.sleep(0)
    second = asyncio.create_task(cancelled_write())
    third = asyncio.create_task(commits.submit("plan"))
    await asyncio.sleep(0.01)
    second.cancel()
    release.set()
    await first
    assert await third == "PLAN"
    with pytest.raises(asyncio.CancelledError):
        await second
    assert [batch.log for batch in opened] == [["slow", "commit"], ["plan", "commit"]]


async def test_writers_that_come_back_one_by_one_share_the_next_batch() -> None:
    """Eight writers, each sending its next write a little after its answer (as clients over
    a network do): every batch after the first carries all eight, not one and then seven."""
    sizes: list[int] = []

    @asynccontextmanager
    async def begin() -> AsyncIterator[_FakeBatch]:
        yield _FakeBatch()

    async def apply(batch: _FakeBatch, plans: Sequence[int]) -> list[int]:
        sizes.append(len(plans))
        return list(plans)

    commits: GroupCommit[_FakeBatch, int, int] = GroupCommit(begin, apply, gather_seconds=0.5)

    async def writer(index: int) -> None:
        for _ in range(4):
            await commits.submit(index)
            await asyncio.sleep(0.002 * index)  # the answer's and the next write's trip

    await asyncio.gather(*(writer(index) for index in range(8)))
    assert sizes == [8, 8, 8, 8]


async def test_batches_back_to_back_keep_their_connection(store: AsyncFlaggery) -> None:
    await store.increase_buckets(2)
    engine = store.database.engine.sync_engine
    seen = {"checkout": 0, "commit": 0}

    def count(name: str) -> Callable[..., None]:
        return lambda *_: seen.__setitem__(name, seen[name] + 1)

    event.listen(engine, "checkout", count("checkout"))
    event.listen(engine, "commit", count("commit"))

    async def arriving(subject_id: int) -> int:
        await asyncio.sleep(0.002 * subject_id)  # a stream: some arrive while a batch runs
        return await store.add_subject(subject_id, 1)

    await asyncio.gather(*(arriving(i) for i in range(1, 61)))
    assert seen["commit"] > 1
    assert seen["checkout"] < seen["commit"]
    assert await store.revision() == 61
    async with store.database.read() as conn:
        await check_invariants(conn)


async def test_a_failing_commit_listener_does_not_unacknowledge_a_committed_write(
    store: AsyncFlaggery,
) -> None:
    async def broken(*_: Any) -> None:
        raise RuntimeError("a replica's bug")

    store.database.commit_listeners.append(broken)
    await store.add_group("g")  # committed, so answered as such
    assert await store.list_groups() == ["g"]


async def test_a_replica_following_its_own_handle_has_the_writes_when_they_return(
    store: AsyncFlaggery, clock: FakeClock
) -> None:
    """Read-your-writes on the writing process: a committed batch is applied to a replica
    registered on the same handle before its writes are answered, without a read."""
    await store.increase_buckets(3)
    await store.add_subjects([(i, 1) for i in range(1, 11)])
    replica = Replica(store.database, clock)  # no feed: only the commit listener moves it
    await replica.reload()
    store.database.commit_listeners.append(replica.apply_own_commit)
    told: list[tuple[int, int]] = []
    replica.subscribers.add(
        lambda update: told.append((update.snapshot.revision, len(update.changes or ())))
    )
    await outcomes(
        store.add_subject(1000, 3),
        store.add_group("staff"),
        store.add_subject_to_group(1000, "staff"),
        store.set_subject_weight(7, 9),
        store.add_subject(1000, 1),  # refused: not in the log, not applied
    )
    head = await store.revision()
    assert replica.revision == head == 6
    assert (replica.counts.incremental, replica.counts.full) == (1, 1)
    assert told == [(6, 4)]
    snapshot = replica.snapshot
    assert list(snapshot.subject(1000).groups) == ["staff"] and snapshot.subject(7).weight == 9
    async with store.database.read() as conn:
        assert replica.head == await read_head(conn)
        expected = await naive_variants_all(conn, clock.now)
    assert {sid: dict(snapshot.variants(sid)) for sid in expected} == expected


async def test_a_bulk_add_logged_as_one_fact_is_patched_into_its_own_replica(
    store: AsyncFlaggery, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bulk add too large to log fact by fact: the change log holds one SubjectsFact,
    which this process's replica patches in, without reloading, before the add is answered
    (an import over REST), as every other replica does when it reads it."""
    monkeypatch.setattr(database, "MAX_LOGGED_FACTS", 20)
    await store.increase_buckets(3)
    replica = Replica(store.database, clock)
    await replica.reload()
    store.database.commit_listeners.append(replica.apply_own_commit)
    placed = await store.add_subjects([(i, i % 4 + 1) for i in range(1, 51)])
    page = await store.changes(1, 10)
    assert [fact.__class__.__name__ for fact in page.changes[0].facts] == ["SubjectsFact"]
    assert replica.revision == await store.revision() == 2
    assert (replica.counts.incremental, replica.counts.full) == (1, 1)
    snapshot = replica.snapshot
    assert [snapshot.subject(i).bucket for i in range(1, 51)] == placed
    assert snapshot.subject(50).weight == 3
    async with store.database.read() as conn:
        expected = await naive_variants_all(conn, clock.now)
    assert {sid: dict(snapshot.variants(sid)) for sid in expected} == expected


async def test_a_bulk_add_beyond_the_patch_bound_is_reloaded(
    store: AsyncFlaggery, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beyond MAX_PATCHED_SUBJECTS the writer's replica reloads, like every other process."""
    monkeypatch.setattr(database, "MAX_LOGGED_FACTS", 20)
    monkeypatch.setattr(subjects_admin, "MAX_PATCHED_SUBJECTS", 40)
    await store.increase_buckets(3)
    replica = Replica(store.database, clock)
    await replica.reload()
    store.database.commit_listeners.append(replica.apply_own_commit)
    await store.add_subjects([(i, 1) for i in range(1, 41)])  # patched
    await store.add_subjects([(i, 1) for i in range(41, 82)])  # not patched
    assert (replica.counts.incremental, replica.counts.full) == (1, 1)
    assert replica.revision == 2
    assert await replica.refresh_to(3)
    assert (replica.counts.incremental, replica.counts.full) == (1, 2)
    assert replica.snapshot.subject(81).weight == 1
