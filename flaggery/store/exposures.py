"""Exposure counting: a tally of exposures written in one transaction, counters upserted.

Exposures are counted, never stored one per row. A unit's first exposure in a test is counted
exactly, across flushes, processes and replicas, by the database: registered subjects are one
bit each in ``exposed_subjects`` (chunks of 65,536 ids, 8 KiB; 10,000,000 dense ids are
1.25 MB per test), hashed targeting keys one ``exposed_units`` row each. A flush holds one
lock for its transaction (PostgreSQL: an advisory lock; SQLite: the write lock), so two
processes never both count a unit first. ``exposure_counts`` holds per (test, reported group,
population, bucket) the counters, added to with ``ON CONFLICT DO UPDATE``. Counts are not
part of the change log (no revision): they are telemetry, not configuration.
``assignment_counts`` holds, apart, what the flags routes served per (test, group), added to
in the same flush transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from sqlalchemy import delete, func, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from flaggery.engine.expected_shares import ShareBasis, bucket_tallies
from flaggery.engine.exposure_tally import COUNTERS, ExposureTally
from flaggery.engine.exposures import ClassifiedExposure
from flaggery.engine.health_report import AbTestHealth, TestCounts, health_of
from flaggery.engine.snapshot import Snapshot
from flaggery.errors import AbTestNotFound
from flaggery.store import tables as t
from flaggery.store.database import Database

__all__ = [
    "CHUNK_BITS",
    "COUNTERS",
    "flush_tally",
    "forget_exposures",
    "health_from",
    "read_assignment_counts",
    "read_exposure_counts",
    "record_exposures",
]

CHUNK_BITS = 1 << 16
_CHUNK_BYTES = CHUNK_BITS // 8
_OFFSET_MASK = CHUNK_BITS - 1
# Any constant: the advisory lock every flush of every process takes (PostgreSQL).
_FLUSH_LOCK = 0x666C6167_65787073


async def record_exposures(db: Database, exposures: Sequence[ClassifiedExposure]) -> None:
    """Count `exposures` in one transaction. Raises DatabaseUnavailable (nothing counted)."""
    tally = ExposureTally()
    tally.extend(list(exposures))
    await flush_tally(db, tally)


async def flush_tally(
    db: Database, tally: ExposureTally, assignments: Mapping[tuple[str, str], int] | None = None
) -> None:
    """Write `tally` and `assignments` ((test, group) -> answers served,
    `flaggery.engine.assignment_tally.served_by_group`) in one transaction, the tally's first
    exposures settled against the database's. Raises DatabaseUnavailable: nothing was
    written, and `tally` is as it was."""
    if not tally and not assignments:
        return
    async with db.read() as conn:
        await _lock(conn, db.is_postgres)
        if tally:
            first_subjects = await _mark_subjects(conn, db.is_postgres, tally.subjects)
            first_keys = await _insert_keys(conn, db.is_postgres, tally.keys)
            counters = tally.settled(first_subjects, first_keys)
            await _upsert_counts(conn, db.is_postgres, counters)
        if assignments:
            await _add_assignments(conn, db.is_postgres, assignments)
        await conn.commit()


async def _lock(conn: AsyncConnection, postgres: bool) -> None:
    """Serialize flushes across processes: PostgreSQL's advisory lock does not block admin
    writes; on SQLite a write that changes nothing takes the database's write lock."""
    if postgres:
        await conn.execute(select(func.pg_advisory_xact_lock(_FLUSH_LOCK)))
    else:
        await conn.execute(update(t.state).where(t.state.c.id == 1).values(id=t.state.c.id))


async def _mark_subjects(
    conn: AsyncConnection, postgres: bool, pending: Mapping[str, Mapping[int, object]]
) -> set[tuple[str, int]]:
    """Set the bits of the pending subjects; (test, subject id) of those whose bit was clear."""
    wanted: defaultdict[tuple[str, int], list[int]] = defaultdict(list)
    for test, pending_subjects in pending.items():
        for subject in pending_subjects:
            wanted[test, subject >> 16].append(subject)
    if not wanted:
        return set()
    c = t.exposed_subjects.c
    query = select(c.test, c.chunk, c.bits).where(tuple_(c.test, c.chunk).in_(list(wanted)))
    chunks = {(row.test, row.chunk): bytearray(row.bits) for row in await conn.execute(query)}
    firsts: set[tuple[str, int]] = set()
    changed = []
    for (test, chunk), subjects in sorted(wanted.items()):
        bits = chunks.get((test, chunk)) or bytearray(_CHUNK_BYTES)
        before = len(firsts)
        for subject in subjects:
            offset = subject & _OFFSET_MASK
            mask = 1 << (offset & 7)
            if not bits[offset >> 3] & mask:
                bits[offset >> 3] |= mask
                firsts.add((test, subject))
        if len(firsts) > before:
            changed.append({"test": test, "chunk": chunk, "bits": bytes(bits)})
    if changed:
        insert = (postgresql if postgres else sqlite).insert(t.exposed_subjects)
        statement = insert.on_conflict_do_update(
            index_elements=[c.test, c.chunk], set_={"bits": insert.excluded.bits}
        )
        await conn.execute(statement, changed)
    return firsts


async def _insert_keys(
    conn: AsyncConnection, postgres: bool, pending: Mapping[str, Mapping[str, object]]
) -> set[tuple[str, str]]:
    """(test, key) of the pending hashed keys this flush exposes first."""
    units = sorted((test, f"k:{key}") for test, keys in pending.items() for key in keys)
    if not units:
        return set()
    dialect = postgresql if postgres else sqlite
    statement = (
        dialect.insert(t.exposed_units)
        .values([{"test": test, "unit": unit} for test, unit in units])
        .on_conflict_do_nothing()
        .returning(t.exposed_units.c.test, t.exposed_units.c.unit)
    )
    return {(row.test, row.unit[2:]) for row in await conn.execute(statement)}


async def _upsert_counts(
    conn: AsyncConnection, postgres: bool, counters: Mapping[tuple[str, str, bool, int], list[int]]
) -> None:
    dialect = postgresql if postgres else sqlite
    rows = [
        {"test": test, "test_group": group, "hashed": hashed, "bucket": bucket}
        | dict(zip(COUNTERS, counts, strict=True))
        for (test, group, hashed, bucket), counts in sorted(counters.items())
    ]
    insert = dialect.insert(t.exposure_counts)
    table = t.exposure_counts.c
    statement = insert.on_conflict_do_update(
        index_elements=[table.test, table.test_group, table.hashed, table.bucket],
        set_={name: table[name] + insert.excluded[name] for name in COUNTERS},
    )
    await conn.execute(statement, rows)


async def _add_assignments(
    conn: AsyncConnection, postgres: bool, assignments: Mapping[tuple[str, str], int]
) -> None:
    insert = (postgresql if postgres else sqlite).insert(t.assignment_counts)
    table = t.assignment_counts.c
    statement = insert.on_conflict_do_update(
        index_elements=[table.test, table.test_group],
        set_={"served": table.served + insert.excluded.served},
    )
    rows = [
        {"test": test, "test_group": group, "served": served}
        for (test, group), served in sorted(assignments.items())
    ]
    await conn.execute(statement, rows)


async def read_assignment_counts(db: Database, test: str) -> dict[str, int]:
    """Group -> flags answers served from its buckets while `test` was live (every server of
    the database, up to their last flush). Raises DatabaseUnavailable."""
    table = t.assignment_counts.c
    query = select(table.test_group, table.served).where(table.test == test)
    async with db.read() as conn:
        return {row.test_group: row.served for row in await conn.execute(query)}


async def read_exposure_counts(db: Database, test: str) -> list[TestCounts]:
    """Every counters row of `test`, by group, population and bucket. Raises
    DatabaseUnavailable."""
    table = t.exposure_counts.c
    query = (
        select(table.test_group, table.hashed, table.bucket, *(table[n] for n in COUNTERS))
        .where(table.test == test)
        .order_by(table.test_group, table.hashed, table.bucket)
    )
    async with db.read() as conn:
        result = await conn.execute(query)
        return [
            TestCounts(row.test_group, row.hashed, row.bucket, *(getattr(row, n) for n in COUNTERS))
            for row in result
        ]


async def forget_exposures(conn: AsyncConnection, test: str) -> None:
    """Delete the counts of `test` (in the caller's transaction): a test deleted and created
    again under its name starts from zero."""
    await conn.execute(delete(t.exposure_counts).where(t.exposure_counts.c.test == test))
    await conn.execute(delete(t.assignment_counts).where(t.assignment_counts.c.test == test))
    await conn.execute(delete(t.exposed_units).where(t.exposed_units.c.test == test))
    await conn.execute(delete(t.exposed_subjects).where(t.exposed_subjects.c.test == test))


async def health_from(
    db: Database, snapshot: Snapshot, test_name: str, basis: ShareBasis
) -> AbTestHealth:
    """`test_name`'s health from its counters and `snapshot`'s allocation. Raises
    AbTestNotFound, DatabaseUnavailable."""
    test = snapshot.config.abtests.get(test_name)
    if test is None:
        raise AbTestNotFound(f"A/B test {test_name!r} does not exist.")
    tallies = bucket_tallies(snapshot.to_state().subjects, basis)
    counts = await read_exposure_counts(db, test_name)
    return health_of(test, tallies, counts, await read_assignment_counts(db, test_name))
