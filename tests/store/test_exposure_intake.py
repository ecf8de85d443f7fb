"""Exposures accepted in memory and written in batches: first exposures stay exact across
flushes and processes, a failed flush keeps its exposures, the backlog is bounded."""

from __future__ import annotations

import asyncio

import pytest

from flaggery import errors
from flaggery.engine.exposures import ClassifiedExposure
from flaggery.live.exposure_intake import ExposureIntake
from flaggery.store.database import Database
from flaggery.store.exposures import read_exposure_counts
from tests.unreachable import unreachable_postgres_url


def seen(unit: int | str, group: str = "a") -> ClassifiedExposure:
    return ClassifiedExposure("t", group, "a", unit, isinstance(unit, str), 1, "live")


async def totals(db: Database) -> tuple[int, int, int]:
    rows = await read_exposure_counts(db, "t")
    return (
        sum(r.first for r in rows),
        sum(r.repeats for r in rows),
        sum(r.misassigned for r in rows),
    )


async def test_two_processes_flushing_at_once_count_each_unit_first_once(db_url: str) -> None:
    """Subjects across three chunks (ids -1, 0..99, 65,536..65,635) and hashed keys, sent
    twice by each of two processes, in two flushes each, the second ones concurrent."""
    units: list[int | str] = [
        -1,
        *range(100),
        *range(65_536, 65_636),
        *(f"k{i}" for i in range(50)),
    ]
    one, two = Database(db_url), Database(db_url)
    try:
        intakes = [ExposureIntake(db, interval=60) for db in (one, two)]
        intakes[0].accept([seen(u) for u in units[:120]])
        intakes[1].accept([seen(u) for u in units[100:]])
        await asyncio.gather(*(intake.flush() for intake in intakes))
        intakes[0].accept([seen(u, "b") for u in units])
        intakes[1].accept([seen(u) for u in units])
        await asyncio.gather(*(intake.flush() for intake in intakes))
        assert await totals(one) == (len(units), len(units) * 2 + 20, len(units))
        await intakes[0].flush()  # nothing pending: no write
        assert intakes[0].pending == 0
    finally:
        await one.dispose()
        await two.dispose()


async def test_a_failed_flush_keeps_its_exposures_and_the_backlog_is_bounded() -> None:
    db = Database(unreachable_postgres_url())
    try:
        intake = ExposureIntake(db, interval=60, max_pending=5)
        intake.accept([seen(1), seen(2), seen(3)])
        with pytest.raises(errors.DatabaseUnavailable):
            await intake.flush()
        assert intake.pending == 3
        with pytest.raises(errors.DatabaseUnavailable, match="3 exposures are waiting"):
            intake.accept([seen(4), seen(5), seen(6)])  # whole batch refused
        intake.accept([seen(4), seen(5)])
        assert intake.pending == 5
    finally:
        await db.dispose()
