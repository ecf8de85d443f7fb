"""Single-subject writes planned as data, so a batch applies many of them in a few statements.

``add_subject``, ``set_subject_weight``, ``add_subject_to_group`` and
``rm_subject_from_group`` are the writes that come in bursts (sign-ups, weight changes, group
memberships). Each is a `SubjectWrite`; the group commit (flaggery.store.group_commit) hands
consecutive ones to `apply_subject_writes`, which reads every row they touch at once, judges
each write in order against that working copy exactly as the one-at-a-time write would (the
same checks in the same order, the same errors and messages, the same facts), and writes the
net result with one statement per table. A refused write changes nothing, so it needs no
SAVEPOINT: a run of N writes costs about eight round trips instead of N times six, and on
PostgreSQL two (one read, one write: flaggery.store.batch_statements).

The batch holds the revision lock from its first statement, so nothing else writes between
reading the rows and writing them back.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Executable, bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from flaggery.engine.allocation import lightest_bucket, like_key_bucket
from flaggery.engine.model import Fact, Subject, SubjectFact
from flaggery.engine.targeting import key_bucketer
from flaggery.errors import (
    FlaggeryError,
    GroupNotFound,
    SubjectAlreadyInGroup,
    SubjectExists,
    SubjectNotFound,
    SubjectNotInGroup,
)
from flaggery.store import tables as t
from flaggery.store.batch_statements import RowChanges, read_rows, write_rows
from flaggery.store.queries import read_bucket_weights, read_key_splits
from flaggery.store.removed_subjects import REMEMBERED_FOR, forget_buckets, remembered_buckets
from flaggery.store.validation import storable

__all__ = ["Applied", "Outcome", "SubjectWrite", "apply_subject_writes", "read_subjects"]

Operation = Literal[
    "add_subject", "set_subject_weight", "add_subject_to_group", "rm_subject_from_group"
]


@dataclass(frozen=True)
class SubjectWrite:
    """One write of one subject; its arguments are already validated (ids, weights)."""

    operation: Operation
    subject: int
    weight: int = 0
    """add_subject, set_subject_weight."""
    group: str = ""
    """add_subject_to_group, rm_subject_from_group."""
    like_key: str | None = None
    """add_subject: place it where this (checked) targeting key hashes to, within the balance
    tolerance (flaggery.engine.allocation.like_key_bucket)."""


@dataclass(frozen=True)
class Applied:
    """A write that was applied: its revision (None: it changed nothing and takes none), the
    facts for its change-log row, and for add_subject the bucket it was placed in."""

    revision: int | None
    facts: tuple[Fact, ...] = ()
    bucket: int | None = None
    key_bucket: int | None = None
    """add_subject with a like_key: the bucket the key hashes to."""
    reason: str | None = None
    """add_subject with a like_key placed elsewhere than `key_bucket`: why."""
    before: tuple[Fact, ...] = ()
    """The subject as it was before the write (History's "before")."""


Outcome = Applied | FlaggeryError
"""Per write: applied, or refused with the error the caller raises."""


async def apply_subject_writes(
    conn: AsyncConnection, writes: Sequence[SubjectWrite], revision: int, now: datetime
) -> list[Outcome]:
    """Judge and apply ``writes`` in order on ``conn``, the applied ones taking the revisions
    after ``revision`` one by one, at time ``now``. Returns one outcome per write. Raises only
    what the database raises (then nothing may be committed)."""
    rows = await _WorkingCopy.load(conn, writes, now)
    outcomes: list[Outcome] = []
    for write in writes:
        try:
            outcome = rows.apply(write, revision + 1)
        except FlaggeryError as error:
            outcomes.append(error)
            continue
        if outcome.revision is not None:
            revision = outcome.revision
        outcomes.append(outcome)
    await rows.write_back(conn)
    return outcomes


@dataclass
class _WorkingCopy:
    """The rows the writes touch, as they stand after the writes judged so far."""

    subjects: dict[int, Subject | None]
    loaded: dict[int, Subject | None]
    bucket_weights: dict[int, int]
    groups: set[str]
    key_salt: bytes
    """The targeting-key salt; read only when some add_subject has a like_key."""
    key_splits: tuple[tuple[int, int], ...] = ()
    """The growths that split the buckets, for a like_key (flaggery.engine.targeting)."""
    bucket_deltas: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    joined: dict[tuple[str, int], int] = field(default_factory=dict)
    """(group, subject) -> revision of a join made by these writes and not undone by them."""
    returning: dict[int, int] = field(default_factory=dict)
    """Removed subjects' remembered buckets (flaggery.store.removed_subjects), for the adds."""
    returned: list[int] = field(default_factory=list)
    """Ids added back into their remembered bucket: their memories go."""

    @classmethod
    async def load(
        cls, conn: AsyncConnection, writes: Sequence[SubjectWrite], now: datetime
    ) -> _WorkingCopy:
        ids = sorted({w.subject for w in writes})
        names = sorted({w.group for w in writes if w.group and storable(w.group)})
        adds = [w.subject for w in writes if w.operation == "add_subject"]
        if conn.dialect.name == "postgresql":
            subjects, groups, weights, returning = await _read_postgres(conn, ids, names, adds, now)
        else:
            subjects = await read_subjects(conn, ids)
            groups = set()
            if names:
                query = select(t.groups.c.name).where(t.groups.c.name.in_(names))
                groups = set((await conn.execute(query)).scalars())
            weights = await read_bucket_weights(conn) if adds else {}
            returning = await remembered_buckets(conn, adds, now) if adds else {}
        salt = b""
        splits: tuple[tuple[int, int], ...] = ()
        if any(w.like_key is not None for w in writes):
            salt = bytes.fromhex((await conn.execute(select(t.state.c.key_salt))).scalar_one())
            splits = await read_key_splits(conn)
        return cls(subjects, dict(subjects), weights, groups, salt, splits, returning=returning)

    def apply(self, write: SubjectWrite, revision: int) -> Applied:
        sid = write.subject
        if write.operation == "add_subject":
            return self._add(sid, write.weight, revision, write.like_key)
        subject = self._require(sid)
        if write.operation == "set_subject_weight":
            if subject.weight == write.weight:
                return Applied(None)
            self._add_weight(subject.bucket, write.weight - subject.weight)
            changed = Subject(write.weight, subject.bucket, subject.groups)
        else:
            changed = self._move(sid, subject, write, revision)
        self.subjects[sid] = changed
        left = tuple(group for group in subject.groups if group not in changed.groups)
        return Applied(
            revision, (SubjectFact(sid, changed, left),), before=(SubjectFact(sid, subject),)
        )

    def _add(self, sid: int, weight: int, revision: int, like_key: str | None) -> Applied:
        if self.subjects[sid] is not None:
            raise SubjectExists(f"Subject {sid} exists already.")
        bucket = lightest_bucket(self.bucket_weights)  # NoBuckets first
        key_bucket, reason = None, None
        if like_key is not None:
            buckets = sorted(self.bucket_weights)  # creation order: ids only grow
            bucketer = key_bucketer(self.key_salt, len(buckets), self.key_splits)
            key_bucket = buckets[bucketer.index(like_key)]
            bucket, reason = like_key_bucket(self.bucket_weights, key_bucket, weight)
        returning = self.returning.pop(sid, None)
        if returning is not None:  # a removed subject comes back to its own bucket
            self.returned.append(sid)
            if key_bucket is not None and returning != key_bucket:
                reason = (
                    f"Subject {sid} was registered before: it returns to its bucket {returning} "
                    "and its variants there, not to the key's bucket."
                )
            bucket = returning
        self._add_weight(bucket, weight)
        self.subjects[sid] = Subject(weight, bucket)
        facts = (SubjectFact(sid, Subject(weight, bucket)),)
        return Applied(revision, facts, bucket, key_bucket, reason, (SubjectFact(sid, None),))

    def _move(self, sid: int, subject: Subject, write: SubjectWrite, revision: int) -> Subject:
        """A join or a leave, checked as flaggery.store.groups checks them."""
        group = write.group
        if group not in self.groups:
            raise GroupNotFound(f"Group {group!r} does not exist.")
        if write.operation == "add_subject_to_group":
            if group in subject.groups:
                raise SubjectAlreadyInGroup(f"Subject {sid} is in group {group!r} already.")
            self.joined[group, sid] = revision
            return Subject(subject.weight, subject.bucket, (*subject.groups, group))
        if group not in subject.groups:
            raise SubjectNotInGroup(f"Subject {sid} is not in group {group!r}.")
        self.joined.pop((group, sid), None)
        kept = tuple(g for g in subject.groups if g != group)
        return Subject(subject.weight, subject.bucket, kept)

    def _require(self, sid: int) -> Subject:
        subject = self.subjects[sid]
        if subject is None:
            raise SubjectNotFound(f"Subject {sid} does not exist.")
        return subject

    def _add_weight(self, bucket: int, delta: int) -> None:
        self.bucket_deltas[bucket] += delta
        if self.bucket_weights:
            self.bucket_weights[bucket] += delta

    async def write_back(self, conn: AsyncConnection) -> None:
        """The net change, one statement per table (each with many parameter sets)."""
        new: list[dict[str, object]] = []
        reweighed: list[dict[str, object]] = []
        left: list[dict[str, object]] = []
        for sid, subject in self.subjects.items():
            before = self.loaded[sid]
            if subject is None:
                continue
            if before is None:
                new.append({"id": sid, "weight": subject.weight, "bucket_id": subject.bucket})
            elif before.weight != subject.weight:
                reweighed.append({"key": sid, "weight": subject.weight})
            if before is not None:
                left += [
                    {"g": g, "s": sid}
                    for g in before.groups
                    if g not in subject.groups or (g, sid) in self.joined
                ]
        joins = [{"group": g, "subject_id": s, "joined": r} for (g, s), r in self.joined.items()]
        deltas: list[dict[str, object]] = [
            {"key": k, "delta": d} for k, d in sorted(self.bucket_deltas.items()) if d
        ]
        if conn.dialect.name == "postgresql":
            await write_rows(conn, _columns(new, reweighed, deltas, left, joins, self.returned))
            return
        s, b, m = t.subjects, t.buckets, t.group_members
        statements: list[tuple[Executable, Sequence[Mapping[str, object]]]] = [
            (insert(s), new),
            (
                update(s).where(s.c.id == bindparam("key")).values(weight=bindparam("weight")),
                reweighed,
            ),
            (
                update(b)
                .where(b.c.id == bindparam("key"))
                .values(weight=b.c.weight + bindparam("delta")),
                deltas,
            ),
            (delete(m).where(m.c.group == bindparam("g"), m.c.subject_id == bindparam("s")), left),
            (insert(m), joins),
        ]
        for statement, parameters in statements:
            if parameters:
                await conn.execute(statement, parameters)
        await forget_buckets(conn, self.returned)


async def _read_postgres(
    conn: AsyncConnection, ids: list[int], names: list[str], adds: list[int], now: datetime
) -> tuple[dict[int, Subject | None], set[str], dict[int, int], dict[int, int]]:
    """What `_WorkingCopy.load` reads, in one query (flaggery.store.batch_statements)."""
    rows = await read_rows(
        conn, ids, names, buckets=bool(adds), removed=adds, removed_since=now - REMEMBERED_FOR
    )
    subjects: dict[int, Subject | None] = dict.fromkeys(ids)
    for sid, (weight, bucket) in rows.subjects.items():
        subjects[sid] = Subject(weight, bucket, tuple(rows.groups_of.get(sid, ())))
    return subjects, rows.groups, rows.bucket_weights, rows.removed


def _columns(  # noqa: PLR0913 - one list per kind of row, as write_back builds them
    new: list[dict[str, object]],
    reweighed: list[dict[str, object]],
    deltas: list[dict[str, object]],
    left: list[dict[str, object]],
    joins: list[dict[str, object]],
    returned: list[int],
) -> RowChanges:
    def column(rows: list[dict[str, object]], name: str) -> list[Any]:
        return [row[name] for row in rows]

    return RowChanges(
        (column(new, "id"), column(new, "weight"), column(new, "bucket_id")),
        (column(reweighed, "key"), column(reweighed, "weight")),
        (column(deltas, "key"), column(deltas, "delta")),
        (column(left, "g"), column(left, "s")),
        (column(joins, "group"), column(joins, "subject_id"), column(joins, "joined")),
        sorted(returned),
    )


async def read_subjects(conn: AsyncConnection, ids: list[int]) -> dict[int, Subject | None]:
    """Each id's subject with its groups in join order, None for an unknown id: two queries."""
    rows = await conn.execute(
        select(t.subjects.c.id, t.subjects.c.weight, t.subjects.c.bucket_id).where(
            t.subjects.c.id.in_(ids)
        )
    )
    found = {row.id: (row.weight, row.bucket_id) for row in rows}
    m = t.group_members.c
    groups: dict[int, list[str]] = defaultdict(list)
    if found:
        members = await conn.execute(
            select(m.subject_id, m.group)
            .where(m.subject_id.in_(sorted(found)))
            .order_by(m.subject_id, m.joined, m.group)
        )
        for sid, group in members:
            groups[sid].append(group)
    subjects: dict[int, Subject | None] = dict.fromkeys(ids)
    for sid, (weight, bucket) in found.items():
        subjects[sid] = Subject(weight, bucket, tuple(groups[sid]))
    return subjects
