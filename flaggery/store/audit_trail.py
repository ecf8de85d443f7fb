"""History: the change log read as an audit trail, oldest first, filtered and paginated.

The change log is the one record of every write (flaggery.store.database appends a row per
write, with its actor); replicas, the stream and this history all read it. Retention prunes old
rows (flaggery.store.retention), so a page says where the retained history starts, and whether
rows the caller asked for are gone.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import Row, func, select

from flaggery.engine.change_words import sentences
from flaggery.engine.model import Change, Fact, decode_facts
from flaggery.engine.touches import Touched, touched
from flaggery.errors import ValidationError
from flaggery.store import tables as t
from flaggery.store.change_index import Name, filtered_revisions, filtered_revisions_after
from flaggery.store.database import Database
from flaggery.store.validation import MAX_SUBJECT_ID, check_subject_id

__all__ = [
    "MAX_CHANGES_LIMIT",
    "ChangeFilter",
    "ChangePage",
    "ChangeRecord",
    "HistoryPage",
    "change_record",
    "read_change_range",
    "read_changes",
    "read_history",
]

MAX_CHANGES_LIMIT = 1000
# A stream resume further behind than this reloads instead: one snapshot is cheaper to send.
MAX_REPLAY = 10_000


class ChangeRecord(msgspec.Struct, frozen=True):
    """One write: its revision, UTC time, actor (None before migration 0005), operation
    (the admin method's name) and the facts it changed (flaggery.engine.model; a single
    ReloadFact for a write too large to itemize)."""

    revision: int
    at: datetime
    actor: str | None
    operation: str
    facts: tuple[Fact, ...]
    before: tuple[Fact, ...] | None = None
    """What the write changed, as it stood before it (None: written before migration 0015,
    or a write too large to itemize)."""
    sentences: tuple[str, ...] = ()
    """The change in words, one per fact (flaggery.engine.change_words)."""


class ChangePage(msgspec.Struct, frozen=True):
    changes: list[ChangeRecord]
    """Oldest first; at most the `limit` asked for."""
    next_after: int
    """Pass as `after` for the next page; equal to `head` when there is nothing more."""
    head: int
    """The database's latest revision."""
    oldest_retained: int | None
    """The oldest revision still in the log (None: the log is empty)."""
    gone: bool
    """True when rows after `after` were pruned by retention: the history has a hole."""


class HistoryPage(msgspec.Struct, frozen=True):
    changes: list[ChangeRecord]
    """Newest first; at most the `limit` asked for."""
    older: int | None
    """Pass as `before` for the next (older) page; None: nothing older is retained."""


class ChangeFilter(msgspec.Struct, frozen=True):
    """Keep the writes that touch every name given: a filter narrows, so two filters keep
    what both keep (``feature="checkout", group="beta"``: the writes touching checkout in
    group beta, such as beta's override of checkout; not every write to either). All None
    keeps every write. A write logged as a reload (too large to itemize) is kept by every
    filter, since it may touch anything."""

    feature: str | None = None
    group: str | None = None
    test: str | None = None
    subject: int | None = None

    @property
    def empty(self) -> bool:
        return self == ChangeFilter()

    def keeps(self, facts: tuple[Fact, ...]) -> bool:
        touches = [touched(fact) for fact in facts]
        return all(
            any(touch.everything or matches(touch) for touch in touches)
            for matches in self._conditions()
        )

    def names(self) -> list[Name]:
        """The (kind, name) of each name given, as flaggery.store.change_index indexes them."""
        given = [("feature", self.feature), ("group", self.group), ("test", self.test)]
        names = [(kind, name) for kind, name in given if name is not None]
        if self.subject is not None:
            names.append(("subject", str(self.subject)))
        return names

    def _conditions(self) -> list[Callable[[Touched], bool]]:
        """One test per name given (flaggery.engine.touches answers what a fact touches)."""
        conditions: list[Callable[[Touched], bool]] = []
        if (feature := self.feature) is not None:
            conditions.append(lambda touch: feature in touch.features)
        if (group := self.group) is not None:
            conditions.append(lambda touch: group in touch.groups or group in touch.members)
        if (test := self.test) is not None:
            conditions.append(lambda touch: test in touch.tests)
        if (subject := self.subject) is not None:
            conditions.append(lambda touch: subject in touch.subjects)
        return conditions


async def read_changes(db: Database, after: int, limit: int, keep: ChangeFilter) -> ChangePage:
    """Up to ``limit`` writes after revision ``after`` that ``keep`` keeps, oldest first.

    Cost: three queries (the head, the rows, the oldest revision). A filtered page reads the
    change_touches index (flaggery.store.change_index), as `read_history` does: one indexed
    query however many writes between do not match, and `next_after` is the head when the page
    holds every kept write up to it (a subject filter's page may hold fewer than ``limit``: a
    bulk add's id span that skips the subject is read and dropped). Rows are read up to the head
    read first, so a write committed meanwhile is on the next page, never skipped. Raises
    ValidationError for an ``after`` that is not a revision (an integer from 0 to 2**63 - 1,
    what the database stores), a ``limit`` outside 1..MAX_CHANGES_LIMIT, or a subject filter
    outside signed 64 bits; DatabaseUnavailable.
    """
    if not _is_int(after) or not 0 <= after <= MAX_SUBJECT_ID:
        raise ValidationError(
            f"after must be a revision, an integer from 0 to {MAX_SUBJECT_ID}, got {after!r:.40}."
        )
    if not _is_int(limit) or not 1 <= limit <= MAX_CHANGES_LIMIT:
        raise ValidationError(
            f"limit must be an integer from 1 to {MAX_CHANGES_LIMIT}, got {limit!r:.40}."
        )
    if keep.subject is not None:
        check_subject_id(keep.subject)
    log = t.change_log.c
    query = select(log.revision, log.at, log.actor, log.operation, log.payload, log.before)
    async with db.read() as conn:
        head = int((await conn.execute(select(t.state.c.revision))).scalar_one())
        if keep.empty:
            query = query.where(log.revision > after, log.revision <= head)
        else:
            revisions = filtered_revisions_after(keep.names(), after, head, limit)
            query = query.where(log.revision.in_(revisions.scalar_subquery()))
        rows = (await conn.execute(query.order_by(log.revision).limit(limit))).all()
        oldest = (await conn.execute(select(func.min(log.revision)))).scalar_one_or_none()
    decoded = [(row, decode_facts(row.payload)) for row in rows]
    if keep.subject is not None:  # the index's bulk-add spans may skip the subject
        decoded = [(row, facts) for row, facts in decoded if keep.keeps(facts)]
    changes = [change_record(row, facts) for row, facts in decoded]
    next_after = rows[-1].revision if len(rows) == limit else head
    # Revisions are contiguous: a retained log that starts later than after + 1 has a hole.
    gone = head > after and (oldest is None or oldest > after + 1)
    return ChangePage(changes, max(next_after, after), head, oldest, gone)


async def read_history(db: Database, before: int, limit: int, keep: ChangeFilter) -> HistoryPage:
    """Up to ``limit`` writes before revision ``before`` that ``keep`` keeps, newest first:
    History's pages. A filtered page reads the change_touches index
    (flaggery.store.change_index): one indexed query whatever the number of writes that do
    not match, and `older` is the last revision read when there may be more (a subject
    filter's page may hold fewer than ``limit``: a bulk add's id span that skips the subject
    is read and dropped, flaggery.store.change_index). Raises
    ValidationError as `read_changes` does; DatabaseUnavailable."""
    if not _is_int(before) or not 1 <= before <= MAX_SUBJECT_ID:
        raise ValidationError(f"before must be a revision from 1 to {MAX_SUBJECT_ID}.")
    if not _is_int(limit) or not 1 <= limit <= MAX_CHANGES_LIMIT:
        raise ValidationError(f"limit must be an integer from 1 to {MAX_CHANGES_LIMIT}.")
    if keep.subject is not None:
        check_subject_id(keep.subject)
    log = t.change_log.c
    query = select(log.revision, log.at, log.actor, log.operation, log.payload, log.before)
    if keep.empty:
        query = query.where(log.revision < before)
    else:
        revisions = filtered_revisions(keep.names(), before, limit).scalar_subquery()
        query = query.where(log.revision.in_(revisions))
    query = query.order_by(log.revision.desc()).limit(limit)
    async with db.read() as conn:
        rows = (await conn.execute(query)).all()
    decoded = [(row, decode_facts(row.payload)) for row in rows]
    if keep.subject is not None:  # the index's bulk-add spans may skip the subject
        decoded = [(row, facts) for row, facts in decoded if keep.keeps(facts)]
    changes = [change_record(row, facts) for row, facts in decoded]
    last = rows[-1].revision if len(rows) == limit else 0
    return HistoryPage(changes, last if last > 1 else None)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def change_record(row: Row[Any, Any, Any, Any, Any, Any], facts: tuple[Fact, ...]) -> ChangeRecord:
    """A change-log row (revision, at, actor, operation, payload decoded as `facts`, before)."""
    before = None if row.before is None else decode_facts(row.before)
    words = tuple(sentences(facts, before))
    return ChangeRecord(row.revision, row.at, row.actor, row.operation, facts, before, words)


async def read_change_range(db: Database, after: int, upto: int) -> list[Change] | None:
    """The change-log entries after ``after`` up to ``upto``, oldest first, or None if the log
    no longer holds all of them (pruned, or rewritten: a revision missing) or they are more
    than MAX_REPLAY. One query of at most MAX_REPLAY rows."""
    if upto - after > MAX_REPLAY:
        return None
    log = t.change_log.c
    query = (
        select(log.revision, log.operation, log.payload)
        .where(log.revision > after, log.revision <= upto)
        .order_by(log.revision)
    )
    async with db.read() as conn:
        rows = (await conn.execute(query)).all()
    if [row.revision for row in rows] != list(range(after + 1, upto + 1)):
        return None
    return [Change(row.revision, row.operation, decode_facts(row.payload)) for row in rows]
