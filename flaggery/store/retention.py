"""Change-log retention: the log keeps recent history only, so it stays bounded.

A replica whose revision has fallen out of the retained range cannot patch its snapshot and
reloads fully (flaggery.store.replica), so pruning never costs correctness, only a reload.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from flaggery.errors import ValidationError
from flaggery.store import tables as t
from flaggery.store.database import Database

__all__ = ["MAX_RETENTION_DAYS", "MAX_RETENTION_REVISIONS", "Retention", "prune_change_log"]

# The bounds of FLAGGERY_CHANGE_LOG_RETENTION_* (flaggery.settings), for the Python API too:
# timedelta(days=...) overflows past 999,999,999 days, and a revision count past 2**63 past
# what PostgreSQL's BIGINT compares with.
MAX_RETENTION_REVISIONS = 10**12
MAX_RETENTION_DAYS = 36_500


@dataclass(frozen=True)
class Retention:
    """How much of the change log to keep; 0 turns a bound off."""

    revisions: int = 100_000
    """Keep the rows of the last `revisions` revisions."""
    days: float = 0
    """Keep the rows written in the last `days` days."""

    def __post_init__(self) -> None:
        if (
            isinstance(self.revisions, bool)
            or not isinstance(self.revisions, int)
            or not (0 <= self.revisions <= MAX_RETENTION_REVISIONS)
        ):
            raise ValidationError(
                f"Retention revisions must be an integer from 0 to {MAX_RETENTION_REVISIONS}, "
                f"got {self.revisions!r}."
            )
        if (
            isinstance(self.days, bool)
            or not isinstance(self.days, int | float)
            or not 0 <= self.days <= MAX_RETENTION_DAYS
        ):
            raise ValidationError(
                f"Retention days must be a number from 0 to {MAX_RETENTION_DAYS}, "
                f"got {self.days!r}."
            )

    @property
    def bounded(self) -> bool:
        return self.revisions > 0 or self.days > 0


async def prune_change_log(db: Database, retention: Retention) -> int:
    """Delete the rows outside `retention` and return how many went.

    The row of the latest revision always stays: it is how replicas tell that their history
    continues (flaggery.store.head). One DELETE in a transaction of its own; it changes no
    state, so it neither bumps the revision nor waits for the revision lock.
    """
    if not retention.bounded:
        return 0
    async with db.read() as conn, conn.begin():
        latest = (await conn.execute(select(t.state.c.revision))).scalar_one()
        result = await conn.execute(
            delete(t.change_log).where(
                t.change_log.c.revision < latest, _outside(retention, db, latest)
            )
        )
        oldest = select(func.min(t.change_log.c.revision)).scalar_subquery()
        await conn.execute(delete(t.change_touches).where(t.change_touches.c.revision < oldest))
    return int(result.rowcount)


def _outside(retention: Retention, db: Database, latest: int) -> ColumnElement[bool]:
    log = t.change_log.c
    bounds: list[ColumnElement[bool]] = []
    if retention.revisions > 0:
        bounds.append(log.revision <= latest - retention.revisions)
    if retention.days > 0:
        bounds.append(log.at < db.clock() - timedelta(days=retention.days))
    return or_(*bounds)
