"""Admin operations on buckets and subjects."""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from typing import Any, overload

import asyncpg
from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from flaggery.engine.model import (
    Fact,
    ReloadFact,
    Subject,
    SubjectFact,
    SubjectsFact,
)
from flaggery.engine.returning import place_returning_subjects
from flaggery.engine.targeting import check_targeting_key
from flaggery.errors import FlaggeryError, SubjectExists, SubjectNotFound, ValidationError
from flaggery.store import database
from flaggery.store import tables as t
from flaggery.store.database import Database
from flaggery.store.planned_writes import SubjectWrite, apply_subject_writes
from flaggery.store.queries import read_bucket_weights, read_subject
from flaggery.store.records import BucketRecord, BucketsRecord, PlacementRecord, SubjectRecord
from flaggery.store.removed_subjects import forget_buckets, remember_bucket, remembered_buckets
from flaggery.store.subjects.batch import SubjectBatch, check_subject_pairs
from flaggery.store.subjects.bulk import insert_rows
from flaggery.store.subjects.growth import grow_allocations
from flaggery.store.subjects.insert import insert_subjects
from flaggery.store.validation import check_subject_id, check_weight

__all__ = ["SubjectsAdmin"]

MAX_NEW_BUCKETS = 10_000
# Ids per existence query: below SQLite's bound-parameter limit and asyncpg's message size.
BATCH = 5_000
# A bulk add this large or smaller (an import batch) is logged as one SubjectsFact, 5.5 to 32
# bytes a subject (3.2 MB at most), which every replica, the writing process's own included,
# patches into its snapshot in O(batch); a larger one (ten million in one call) is logged as a
# reload: reading it would cost a replica about what reloading everything costs.
MAX_PATCHED_SUBJECTS = 100_000


class SubjectsAdmin:
    _db: Database

    async def increase_buckets(self, amount: int) -> list[int]:
        """Add ``amount`` (1 to 10,000) empty buckets and return their ids, ascending.

        Each rollout and each A/B test that has not ended takes its share of them by count,
        carrying the remainder across calls (docs/allocation.md). An amount that makes the
        buckets m >= 2 times as many splits them instead, if every carry stays in (-1, 1]:
        each old bucket's m - 1 new children copy its rollouts and test groups, and hashed
        keys move only into them, so they keep their variants (the buckets beyond m times are
        dealt by count). Raises
        ValidationError for an amount out of range. One transaction.
        """
        if (
            isinstance(amount, bool)
            or not isinstance(amount, int)
            or not 0 < amount <= MAX_NEW_BUCKETS
        ):
            raise ValidationError(
                f"amount must be an integer from 1 to {MAX_NEW_BUCKETS}, got {amount!r}."
            )
        async with self._db.write("increase_buckets") as tx:
            old_ids = list(
                (await tx.conn.execute(select(t.buckets.c.id).order_by(t.buckets.c.id))).scalars()
            )
            last = old_ids[-1] if old_ids else 0
            new_ids = list(range(last + 1, last + 1 + amount))
            await insert_rows(tx.conn, t.buckets, [{"id": i, "weight": 0} for i in new_ids])
            tx.record(await grow_allocations(tx, new_ids, old_ids))
        return new_ids

    async def get_buckets(self) -> BucketsRecord:
        """Every bucket with its weight (the sum of its subjects' weights), by id, and the
        totals. Reads the buckets table: O(buckets).
        """
        async with self._db.read() as conn:
            rows = (await conn.execute(select(t.buckets).order_by(t.buckets.c.id))).all()
        records = [BucketRecord(row.id, row.weight) for row in rows]
        return BucketsRecord(len(records), sum(r.weight for r in records), records)

    @overload
    async def add_subject(self, sub_id: int, weight: int = 1) -> int: ...

    @overload
    async def add_subject(
        self, sub_id: int, weight: int = 1, *, like_key: str
    ) -> PlacementRecord: ...

    async def add_subject(
        self, sub_id: int, weight: int = 1, *, like_key: str | None = None
    ) -> int | PlacementRecord:
        """Add subject ``sub_id`` with ``weight`` (1 to 2^31-1) to the lightest bucket (ties:
        lowest id) and return that bucket's id. A subject removed within the last 90 days goes
        back to the bucket it had instead (flaggery.store.removed_subjects).

        With ``like_key`` (a targeting key, e.g. the visitor's before sign-in): place it in the
        bucket that key hashes to, so it keeps every variant the key had at once, unless that
        bucket is heavier than the lightest by more than the balance tolerance (the larger of
        ``weight`` and 5 % of the mean bucket weight): then in the lightest, with the reason.
        Returns a PlacementRecord (bucket, key_bucket, reason) instead of the bucket id.

        Raises SubjectExists, NoBuckets (no bucket yet), ValidationError (id outside signed 64 bits,
        weight out of range), InvalidTargetingKey. One transaction; about 4 ms on PostgreSQL with
        100,000 subjects, independent of their number (bench/store_bench.py).
        """
        sub_id, weight = check_subject_id(sub_id), check_weight(weight)
        key = None if like_key is None else check_targeting_key(like_key)
        write = SubjectWrite("add_subject", sub_id, weight=weight, like_key=key)
        applied = await self._db.apply(write)
        assert applied.bucket is not None  # an applied add_subject always has its bucket
        if applied.key_bucket is None:
            return applied.bucket
        return PlacementRecord(applied.bucket, applied.key_bucket, applied.reason)

    async def add_subjects(self, subjects: Iterable[tuple[int, int]]) -> list[int]:
        """Add many (id, weight) pairs in one transaction, placed exactly as one-by-one insertion
        in the given order would place them (removed subjects coming back included). Returns
        their bucket ids, in input order.

        All or nothing: raises SubjectExists if any id exists (nothing is added), ValidationError
        for a repeated id, a bad id or weight, or more than 10,000,000 pairs, NoBuckets. On
        PostgreSQL the rows go in by binary COPY (flaggery.store.subjects.insert): ten million
        subjects took 11 s on a quiet 2-core machine, 25 to 41 s on a busy one
        (bench/ten_million_bench.py). A batch of more than MAX_LOGGED_FACTS subjects is logged
        as one SubjectsFact (replicas patch it in), or beyond MAX_PATCHED_SUBJECTS as one
        ReloadFact (replicas reload).
        """
        batch = check_subject_pairs(subjects)
        async with self._db.write("add_subjects") as tx:
            if tx.conn.dialect.name != "postgresql":  # PostgreSQL: the COPY finds them
                await _refuse_existing(tx.conn, batch.ids)
            before = await read_bucket_weights(tx.conn)
            remembered = await remembered_buckets(tx.conn, batch.ids, tx.now)
            returning = (
                {i: remembered[sid] for i, sid in enumerate(batch.ids) if sid in remembered}
                if remembered
                else {}  # the usual case: no pass over the ids
            )
            placed, after = place_returning_subjects(before, batch.weights, returning)
            try:
                await insert_subjects(tx.conn, (batch.ids, batch.weights, placed))
            except asyncpg.UniqueViolationError:  # PostgreSQL: say which ids exist
                await _refuse_existing(tx.conn, batch.ids)
                raise
            await _add_bucket_weights(
                tx.conn, {b: w - before[b] for b, w in after.items() if w != before[b]}
            )
            await forget_buckets(tx.conn, list(remembered))
            tx.record(*_added_facts(batch, placed))
        return placed.tolist()

    async def add_subjects_like_keys(
        self, subjects: Iterable[tuple[int, int, str | None]]
    ) -> list[int | PlacementRecord]:
        """Add many (id, weight, like_key) in one transaction and one revision, each placed as
        `add_subject(id, weight, like_key=like_key)` one after another would place it (None:
        the lightest bucket); for visitors who sign in together and keep their variants.
        Returns per subject, in input order, its bucket id (no key) or its PlacementRecord.

        All or nothing: raises SubjectExists, NoBuckets, InvalidTargetingKey, ValidationError
        (a bad or repeated id or weight, none, more than MAX_LOGGED_FACTS), naming the first.
        Reads and writes only the rows of these subjects and the bucket weights.
        """
        writes = [
            SubjectWrite(
                "add_subject",
                check_subject_id(sub_id),
                weight=check_weight(weight),
                like_key=None if key is None else check_targeting_key(key),
            )
            for sub_id, weight, key in subjects
        ]
        _check_batch([write.subject for write in writes])
        async with self._db.write("add_subjects") as tx:
            outcomes = await apply_subject_writes(tx.conn, writes, tx.revision - 1, tx.now)
            placed: list[int | PlacementRecord] = []
            for outcome in outcomes:
                if isinstance(outcome, FlaggeryError):
                    raise outcome
                assert outcome.bucket is not None  # an applied add_subject has its bucket
                tx.record(*outcome.facts)
                tx.remember(*outcome.before)
                key_bucket = outcome.key_bucket
                placed.append(
                    outcome.bucket
                    if key_bucket is None
                    else PlacementRecord(outcome.bucket, key_bucket, outcome.reason)
                )
        return placed

    async def rm_subject(self, sub_id: int, *, forget: bool = False) -> None:
        """Delete the subject and its group memberships; its bucket gets lighter. Its bucket
        is remembered for 90 days, so the same id added again lands there (and stays in its A/B
        test arm); ``forget=True`` remembers nothing (an erasure request).

        Raises SubjectNotFound. One transaction.
        """
        async with self._db.write("rm_subject") as tx:
            subject = await _require_subject(tx.conn, sub_id)
            tx.remember(SubjectFact(sub_id, subject))
            await tx.conn.execute(
                delete(t.group_members).where(t.group_members.c.subject_id == sub_id)
            )
            await tx.conn.execute(delete(t.subjects).where(t.subjects.c.id == sub_id))
            await _add_bucket_weight(tx.conn, subject.bucket, -subject.weight)
            if forget:
                await forget_buckets(tx.conn, [sub_id])
            else:
                await remember_bucket(tx.conn, sub_id, subject.bucket, tx.now)
            tx.record(SubjectFact(sub_id, None, left=subject.groups))

    async def set_subject_weight(self, sub_id: int, weight: int) -> None:
        """Change a subject's weight (1 to 2^31-1). The subject stays in its bucket, whose weight
        changes by the difference; rollouts and A/B tests keep their buckets.

        Raises SubjectNotFound, ValidationError. One transaction.
        """
        weight = check_weight(weight)
        write = SubjectWrite("set_subject_weight", check_subject_id(sub_id), weight=weight)
        await self._db.apply(write)

    async def get_subject(self, sub_id: int) -> SubjectRecord:
        """The subject's id, weight, bucket and groups (in join order), read from the database.

        Raises SubjectNotFound, ValidationError (an id outside signed 64 bits). The record is also
        a context manager (``with flaggery.get_subject(42) as subject:``), as in 0.2.1.
        """
        async with self._db.read() as conn:
            subject = await _require_subject(conn, sub_id)
        return SubjectRecord(sub_id, subject.weight, subject.bucket, list(subject.groups))


def _added_facts(batch: SubjectBatch, placed: array[int]) -> list[Fact]:
    """How a bulk add is logged: a fact per subject while History can list them one by one
    (and revert each), then one compact SubjectsFact, then a reload."""
    if len(batch) <= database.MAX_LOGGED_FACTS:
        rows = zip(batch.ids, batch.weights, placed, strict=True)
        return [SubjectFact(i, Subject(w, b)) for i, w, b in rows]
    if len(batch) <= MAX_PATCHED_SUBJECTS:
        return [SubjectsFact.of(batch.ids, batch.weights, placed)]
    return [ReloadFact(len(batch))]


async def _require_subject(conn: AsyncConnection, sub_id: int) -> Subject:
    subject = await read_subject(conn, check_subject_id(sub_id))
    if subject is None:
        raise SubjectNotFound(f"Subject {sub_id} does not exist.")
    return subject


async def _add_bucket_weight(conn: AsyncConnection, bucket: int, delta: int) -> None:
    await conn.execute(
        update(t.buckets).where(t.buckets.c.id == bucket).values(weight=t.buckets.c.weight + delta)
    )


_ADD_BUCKET_WEIGHTS = """
UPDATE buckets SET weight = buckets.weight + d.delta
FROM unnest($1::int4[], $2::int8[]) AS d (id, delta) WHERE buckets.id = d.id
"""


async def _add_bucket_weights(conn: AsyncConnection, deltas: dict[int, int]) -> None:
    """Add each delta to its bucket's weight: on PostgreSQL one statement over two arrays
    (an import batch changes about every bucket: 100 parameter sets of executemany were 100
    statements for the server), elsewhere one parameter set per bucket. Writers take the
    revision lock before any bucket, so the order rows are locked in does not matter."""
    if not deltas:
        return
    if conn.dialect.name == "postgresql":
        raw: Any = (await conn.get_raw_connection()).driver_connection
        await raw.execute(_ADD_BUCKET_WEIGHTS, list(deltas), list(deltas.values()))
        return
    statement = (
        update(t.buckets)
        .where(t.buckets.c.id == bindparam("bucket"))
        .values(weight=t.buckets.c.weight + bindparam("delta"))
    )
    await conn.execute(statement, [{"bucket": b, "delta": d} for b, d in sorted(deltas.items())])


def _check_batch(ids: Sequence[int]) -> None:
    if not ids:
        raise ValidationError("Give at least one subject.")
    if len(ids) > database.MAX_LOGGED_FACTS:
        raise ValidationError(
            f"At most {database.MAX_LOGGED_FACTS:,} subjects with targeting keys at once, "
            f"got {len(ids):,}: split them."
        )
    if len(set(ids)) != len(ids):
        raise ValidationError("A subject id is given more than once: give each once.")


async def _refuse_existing(conn: AsyncConnection, ids: Sequence[int]) -> None:
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        found = (
            await conn.execute(select(t.subjects.c.id).where(t.subjects.c.id.in_(chunk)))
        ).scalars()
        existing = sorted(found)
        if existing:
            shown = ", ".join(map(str, existing[:10]))
            raise SubjectExists(f"{len(existing)}+ subjects exist already: {shown}.")
