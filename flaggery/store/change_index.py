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

A bulk add logged as one SubjectsFact (10,001 to 100,000 subjects: an import batch) is indexed
by one SUBJECT_SPAN row, its lowest and highest id, not a row per subject: 50,000 rows of an
import batch cost PostgreSQL three times the COPY of the subjects themselves (1.1 to 1.4 s
against 0.41 s, 13 MB of WAL against 7, EXPLAIN ANALYZE at load average 11). A subject filter
reads the spans that cover the subject too; the few that do not hold it (ids between a batch's
own) are dropped by the reader's exact check (flaggery.store.audit_trail.read_history).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import ColumnElement, FromClause, Select, and_, exists, func, or_, select

from flaggery.engine.model import Fact, SubjectsFact
from flaggery.engine.touches import touched
from flaggery.store import tables as t

__all__ = [
    "EVERYTHING",
    "SUBJECT_SPAN",
    "Name",
    "filtered_revisions",
    "filtered_revisions_after",
    "span_name",
    "touch_names",
    "touch_rows",
]

EVERYTHING = "*"
"""The kind of a write that may touch anything (its name is empty)."""
SUBJECT_SPAN = "subjects"
"""The kind of a bulk add's one row: its name is `span_name(lowest id, highest id)`."""
# A signed 64-bit id as 20 decimal digits of id + 2^63: equal lengths, so text order is
# numeric order in every collation and on SQLite and PostgreSQL alike.
_ID_DIGITS = 20
_ID_OFFSET = 1 << 63

Name = tuple[str, str]
"""(kind, name): kind is "feature", "group" (its definition or its members), "test" or
"subject" (the id in decimal), or EVERYTHING."""


def touch_names(facts: Iterable[Fact]) -> set[Name]:
    """What the logged `facts` touch, each (kind, name) once."""
    names: set[Name] = set()
    for fact in facts:
        if isinstance(fact, SubjectsFact):
            ids = fact.columns()[0]
            names.add((SUBJECT_SPAN, span_name(min(ids), max(ids))))
            continue
        touch = touched(fact)
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


def span_name(low: int, high: int) -> str:
    """The name of a SUBJECT_SPAN row: `low` then `high` (signed 64-bit ids), each as
    _ID_DIGITS digits of id + 2^63."""
    return _id_text(low) + _id_text(high)


def _id_text(subject: int) -> str:
    return str(subject + _ID_OFFSET).zfill(_ID_DIGITS)


def _touching(rows: FromClause, name: Name) -> ColumnElement[bool]:
    """Rows that may touch `name`: its own, EVERYTHING, and for a subject the spans that
    cover its id (a superset: a span may skip it)."""
    kind, text = name
    own = or_(and_(rows.c.kind == kind, rows.c.name == text), rows.c.kind == EVERYTHING)
    if kind != "subject":
        return own
    subject = _id_text(int(text))
    low = func.substr(rows.c.name, 1, _ID_DIGITS)
    high = func.substr(rows.c.name, _ID_DIGITS + 1, _ID_DIGITS)
    return or_(own, and_(rows.c.kind == SUBJECT_SPAN, low <= subject, high >= subject))


def filtered_revisions(names: Sequence[Name], before: int, limit: int) -> Select[tuple[int]]:
    """The newest `limit` revisions before `before` whose writes may touch every one of
    `names` (at least one), newest first: an index range per name (the primary key is kind,
    name, revision) and an indexed probe per further name. Exact but for a subject filter,
    which also gets the bulk adds whose id span covers the subject (`_touching`): callers
    drop those with the exact filter."""
    rows, query = _touching_all(names)
    query = query.where(rows.c.revision < before)
    return query.order_by(rows.c.revision.desc()).limit(limit)


def filtered_revisions_after(
    names: Sequence[Name], after: int, upto: int, limit: int
) -> Select[tuple[int]]:
    """The oldest `limit` revisions after `after` and at most `upto` whose writes may touch
    every one of `names` (at least one), oldest first: the same index ranges as
    `filtered_revisions`, read forwards (GET /v1/changes, webhook delivery), with the same
    span false positives for a subject filter."""
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
