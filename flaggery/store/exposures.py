"""Exposure counting: one transaction per batch of classified exposures, counters upserted.

Exposures are counted, never stored one per row. ``exposed_units`` holds each unit (registered
subject or hashed targeting key) once per test, so a unit's first exposure is counted exactly,
across batches, processes and replicas: the database decides which insert came first
(``INSERT .. ON CONFLICT DO NOTHING RETURNING``). ``exposure_counts`` holds per (test,
reported group, population, bucket) the counters, added to with ``ON CONFLICT DO UPDATE``.
Counts are not part of the change log (no revision): they are telemetry, not configuration.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from flaggery.engine.expected_shares import ShareBasis, bucket_tallies
from flaggery.engine.exposures import ClassifiedExposure
from flaggery.engine.health_report import AbTestHealth, TestCounts, health_of
from flaggery.engine.snapshot import Snapshot
from flaggery.errors import AbTestNotFound
from flaggery.store import tables as t
from flaggery.store.database import Database

__all__ = [
    "COUNTERS",
    "forget_exposures",
    "health_from",
    "read_exposure_counts",
    "record_exposures",
]

COUNTERS = ("first", "repeats", "misassigned", "early", "late")
_Key = tuple[str, str, bool, int]


async def record_exposures(db: Database, exposures: Sequence[ClassifiedExposure]) -> None:
    """Count `exposures` in one transaction. Raises DatabaseUnavailable (nothing counted)."""
    async with db.read() as conn:
        new_units = await _insert_units(conn, db.is_postgres, exposures)
        tallies = _tally(exposures, new_units)
        if tallies:
            await _upsert_counts(conn, db.is_postgres, tallies)
        await conn.commit()


async def _insert_units(
    conn: AsyncConnection, postgres: bool, exposures: Iterable[ClassifiedExposure]
) -> set[tuple[str, str]]:
    """(test, unit) of the live exposures whose unit this batch exposes first."""
    units = sorted({(e.test, e.unit) for e in exposures if e.window == "live"})
    if not units:
        return set()
    dialect = postgresql if postgres else sqlite
    statement = (
        dialect.insert(t.exposed_units)
        .values([{"test": test, "unit": unit} for test, unit in units])
        .on_conflict_do_nothing()
        .returning(t.exposed_units.c.test, t.exposed_units.c.unit)
    )
    return {(row.test, row.unit) for row in await conn.execute(statement)}


def _tally(
    exposures: Iterable[ClassifiedExposure], new_units: set[tuple[str, str]]
) -> dict[_Key, Counter[str]]:
    tallies: dict[_Key, Counter[str]] = {}
    for exposure in exposures:
        counts = tallies.setdefault(
            (exposure.test, exposure.group, exposure.hashed, exposure.bucket), Counter()
        )
        if exposure.window != "live":
            counts[exposure.window] += 1
            continue
        unit = (exposure.test, exposure.unit)
        if unit in new_units:
            new_units.discard(unit)  # a second exposure in the same batch is a repeat
            counts["first"] += 1
        else:
            counts["repeats"] += 1
        if exposure.assigned != exposure.group:
            counts["misassigned"] += 1
    return tallies


async def _upsert_counts(
    conn: AsyncConnection, postgres: bool, tallies: dict[_Key, Counter[str]]
) -> None:
    dialect = postgresql if postgres else sqlite
    rows = [
        {"test": test, "test_group": group, "hashed": hashed, "bucket": bucket}
        | {name: counts[name] for name in COUNTERS}
        for (test, group, hashed, bucket), counts in sorted(tallies.items())
    ]
    insert = dialect.insert(t.exposure_counts)
    table = t.exposure_counts.c
    statement = insert.on_conflict_do_update(
        index_elements=[table.test, table.test_group, table.hashed, table.bucket],
        set_={name: table[name] + insert.excluded[name] for name in COUNTERS},
    )
    await conn.execute(statement, rows)


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
    await conn.execute(delete(t.exposed_units).where(t.exposed_units.c.test == test))


async def health_from(
    db: Database, snapshot: Snapshot, test_name: str, basis: ShareBasis
) -> AbTestHealth:
    """`test_name`'s health from its counters and `snapshot`'s allocation. Raises
    AbTestNotFound, DatabaseUnavailable."""
    test = snapshot.config.abtests.get(test_name)
    if test is None:
        raise AbTestNotFound(f"A/B test {test_name!r} does not exist.")
    tallies = bucket_tallies(snapshot.to_state().subjects, basis)
    return health_of(test, tallies, await read_exposure_counts(db, test_name))
