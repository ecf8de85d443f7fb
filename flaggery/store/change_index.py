"""The change log's index of names: per write, each feature, group, A/B test and subject it
touches, as (kind, name) rows of the change_touches table, so a filtered History page is one
indexed query however many other writes came after, instead of decoding thousands of
change-log rows to filter them in Python; so are filtered pages of GET /v1/changes and the
writes a filtered webhook is sent.

The rows say what flaggery.engine.touches says of the facts as logged: a write logged as a
reload (too large to itemize) has one EVERYTHING row, which every filter keeps, as
`ChangeFilter.keeps` does. Written with the change-log row, in its transaction
(flaggery.store.database); pruned with it (flaggery.store.retention); filled for older rows by
migration 0017.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import ColumnElement, FromClause, Select, and_, exists, or_, select

from flaggery.engine.model import Fact
from flaggery.engine.touches import touched
from flaggery.store import tables as t

__all__ = [
    "EVERYTHING",
    "Name",
    "filtered_revisions",
    "filtered_revisions_after",
    "touch_names",
    "touch_rows",
]

EVERYTHING = "*"
"""The kind of a write that may touch anything (its name is empty)."""

Name = tuple[str, str]
"""(kind, name): kind is "feature", "group" (its definition or its members), "test" or
"subject" (the id in decimal), or EVERYTHING."""


def touch_names(facts: Iterable[Fact]) -> set[Name]:
    """What the logged `facts` touch, each (kind, name) once."""
    names: set[Name] = set()
    for touch in map(touched, facts):
        if touch.everything:
            return {(EVERYTHING, "")}
        names.update(("feature", name) for name in touch.features)
        names.update(("group", name) for name in (*touch.groups, *touch.members))
        names.update(("test", name) for name in touch.tests)
        names.update(("subject", str(subject)) for subject in touch.subjects)
    return names


def touch_rows(revision: int, facts: Iterable[Fact]) -> list[dict[str, object]]:
    """The change_touches rows of the write at `revision` that logged `facts`."""
    return [
        {"kind": kind, "name": name, "revision": revision}
        for kind, name in sorted(touch_names(facts))
    ]


def _touching(rows: FromClause, name: Name) -> ColumnElement[bool]:
    kind, text = name
    return or_(and_(rows.c.kind == kind, rows.c.name == text), rows.c.kind == EVERYTHING)


def filtered_revisions(names: Sequence[Name], before: int, limit: int) -> Select[tuple[int]]:
    """The newest `limit` revisions before `before` whose writes touch every one of `names`
    (at least one), newest first: an index range per name (the primary key is kind, name,
    revision) and an indexed probe per further name."""
    rows, query = _touching_all(names)
    query = query.where(rows.c.revision < before)
    return query.order_by(rows.c.revision.desc()).limit(limit)


def filtered_revisions_after(
    names: Sequence[Name], after: int, upto: int, limit: int
) -> Select[tuple[int]]:
    """The oldest `limit` revisions after `after` and at most `upto` whose writes touch every
    one of `names` (at least one), oldest first: the same index ranges as
    `filtered_revisions`, read forwards (GET /v1/changes, webhook delivery)."""
    rows, query = _touching_all(names)
    query = query.where(rows.c.revision > after, rows.c.revision <= upto)
    return query.order_by(rows.c.revision).limit(limit)


def _touching_all(names: Sequence[Name]) -> tuple[FromClause, Select[tuple[int]]]:
    first, *rest = names
    rows = t.change_touches.alias("touch")
    query = select(rows.c.revision).where(_touching(rows, first))
    for number, name in enumerate(rest):
        other = t.change_touches.alias(f"also_{number}")
        query = query.where(
            exists().where(other.c.revision == rows.c.revision, _touching(other, name))
        )
    return rows, query
