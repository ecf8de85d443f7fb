"""Conditional writes: refuse a write whose entity changed after the revision the caller saw.

An admin who opened a form at revision 12 and submits it after someone else fired the kill
switch at revision 13 must not silently undo that. Every change-log row after the caller's
revision is read inside the write's transaction (which holds the revision lock, so nothing can
slip in between) and asked, through flaggery.engine.touches, whether it touched the entity.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Literal, NamedTuple

from sqlalchemy import select

from flaggery.engine.model import decode_facts
from flaggery.engine.touches import Touched, touched
from flaggery.errors import EntityChanged, ValidationError
from flaggery.store import tables as t
from flaggery.store.database import WriteTransaction
from flaggery.store.validation import MAX_SUBJECT_ID

__all__ = ["MAX_CONDITION_SPAN", "EntityKind", "require_unchanged"]

EntityKind = Literal["feature", "group", "test"]

MAX_CONDITION_SPAN = 10_000
"""A condition older than this many writes is refused rather than checked: the check runs
while the write holds the revision lock every other writer waits for."""

_LISTED = 3  # changes named in the message; the rest are counted
_LABELS: dict[EntityKind, str] = {"feature": "Feature", "group": "Group", "test": "A/B test"}


class _Row(NamedTuple):
    revision: int
    at: datetime
    actor: str | None
    operation: str
    payload: str


async def require_unchanged(
    tx: WriteTransaction, if_revision: int | None, kind: EntityKind, name: str
) -> None:
    """Raise EntityChanged if any write after revision `if_revision` touched the entity
    (feature: itself, its rollout, a test or group override setting it, its kill switch;
    group: itself or its overrides, not its membership; test: itself). None: no condition.

    Raises ValidationError for an `if_revision` that is not a revision up to the database's
    head; EntityChanged also when the change log no longer holds every write since (pruned by
    retention) or when more than MAX_CONDITION_SPAN writes came since, since then the answer
    is unknown. Costs one read of the change-log rows since `if_revision`.
    """
    if if_revision is None:
        return
    head = tx.revision - 1
    if isinstance(if_revision, bool) or not isinstance(if_revision, int) or if_revision < 0:
        raise ValidationError(
            f"if_revision must be a revision, an integer from 0 to {MAX_SUBJECT_ID}, "
            f"got {if_revision!r:.40}."
        )
    if if_revision > head:
        raise ValidationError(
            f"if_revision {if_revision} is after the database's latest revision {head}."
        )
    if if_revision == head:
        return
    entity = f"{_LABELS[kind]} {name!r}"
    if head - if_revision > MAX_CONDITION_SPAN:
        raise EntityChanged(
            f"{entity} may have changed: {head - if_revision} writes since revision "
            f"{if_revision} are more than {MAX_CONDITION_SPAN} to check. Reload and try again."
        )
    rows = await _rows_after(tx, if_revision)
    if not rows or rows[0].revision != if_revision + 1:
        raise EntityChanged(
            f"{entity} may have changed: the change log no longer holds the writes after "
            f"revision {if_revision} (retention). Reload and try again."
        )
    changed = [row for row in rows if _touches(row, kind, name)]
    if changed:
        raise EntityChanged(f"{entity} changed since revision {if_revision}: {_list(changed)}.")


async def _rows_after(tx: WriteTransaction, revision: int) -> list[_Row]:
    log = t.change_log.c
    query = (
        select(log.revision, log.at, log.actor, log.operation, log.payload)
        .where(log.revision > revision)
        .order_by(log.revision)
    )
    rows = [_Row(*row) for row in await tx.conn.execute(query)]
    return rows + [_row(earlier) for earlier in tx.earlier]


def _row(row: Mapping[str, object]) -> _Row:
    """A change-log row of this batch, as the table would hold it."""
    revision, at, actor, operation, payload = (
        row[key] for key in ("revision", "at", "actor", "operation", "payload")
    )
    assert isinstance(revision, int) and isinstance(at, datetime)
    assert isinstance(operation, str) and isinstance(payload, str)
    return _Row(revision, at, actor if isinstance(actor, str) else None, operation, payload)


def _touches(row: _Row, kind: EntityKind, name: str) -> bool:
    return any(_names(touched(fact), kind, name) for fact in decode_facts(row.payload))


def _names(touch: Touched, kind: EntityKind, name: str) -> bool:
    if touch.everything:
        return True
    names: Iterable[str] = {
        "feature": touch.features,
        "group": touch.groups,
        "test": touch.tests,
    }[kind]
    return name in names


def _list(rows: list[_Row]) -> str:
    described = [
        f"revision {row.revision} {row.operation}"
        + (f" by {row.actor}" if row.actor else "")
        + f" at {row.at:%Y-%m-%d %H:%M:%S} UTC"
        for row in rows[:_LISTED]
    ]
    more = len(rows) - _LISTED
    return "; ".join(described) + (f"; and {more} more" if more > 0 else "")
