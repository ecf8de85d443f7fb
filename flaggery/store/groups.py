"""Admin operations on groups: members, and the overrides they impose."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from flaggery.engine.model import Group, GroupFact, ReloadFact, Subject, SubjectFact
from flaggery.engine.rules import parse_rule
from flaggery.errors import (
    GroupExists,
    GroupIsUsed,
    OverrideNotFound,
    SubjectAlreadyInGroup,
    SubjectNotFound,
    ValidationError,
)
from flaggery.store import tables as t
from flaggery.store.before_state import keep_before
from flaggery.store.conditions import require_unchanged
from flaggery.store.database import MAX_LOGGED_FACTS, Database, WriteTransaction
from flaggery.store.features import require_variant
from flaggery.store.planned_writes import SubjectWrite, read_subjects
from flaggery.store.queries import (
    encode_rule,
    read_groups,
    read_members_without,
    require_group,
)
from flaggery.store.records import GroupRecord
from flaggery.store.validation import check_name, check_subject_id

__all__ = ["MAX_BULK_MEMBERS", "GroupsAdmin"]

MAX_BULK_MEMBERS = 1_000_000
# Ids per read: below SQLite's bound-parameter limit and asyncpg's message size.
BATCH = 5_000


def _member_ids(sub_ids: Iterable[int]) -> list[int]:
    ids = [check_subject_id(sid) for sid in sub_ids]
    if not ids:
        raise ValidationError("Give at least one subject id.")
    if len(ids) > MAX_BULK_MEMBERS:
        raise ValidationError(f"At most {MAX_BULK_MEMBERS:,} subjects per call.")
    if len(set(ids)) != len(ids):
        raise ValidationError("The same subject id appears more than once.")
    return ids


class GroupsAdmin:
    _db: Database

    async def add_group(self, group_name: str) -> None:
        """Create an empty group with no overrides.

        Raises GroupExists, ValidationError (a bad name). One transaction.
        """
        check_name("group", group_name)
        async with self._db.write("add_group") as tx:
            await keep_before(tx, "group", group_name)
            if (await read_groups(tx.conn, group_name)).get(group_name):
                raise GroupExists(f"Group {group_name!r} exists already.")
            await tx.conn.execute(insert(t.groups).values(name=group_name))
            tx.record(GroupFact(group_name, Group(group_name, {})))

    async def list_groups(self) -> list[str]:
        """Every group name, sorted."""
        async with self._db.read() as conn:
            return list((await conn.execute(select(t.groups.c.name).order_by("name"))).scalars())

    async def get_group(self, group_name: str) -> GroupRecord:
        """The group's name, its member ids (ascending), its overrides {feature: variant} and
        its rule (None without one).

        Raises GroupNotFound. Reads every membership of the group: O(members).
        """
        async with self._db.read() as conn:
            group = await require_group(conn, group_name)
            members = await _members(conn, group_name)
        return GroupRecord(group_name, members, dict(group.overrides), group.rule)

    async def set_group_rule(
        self, group_name: str, rule: object, *, if_revision: int | None = None
    ) -> None:
        """Give the group a targeting rule, replacing any: a request whose evaluation context
        matches it is in the group, besides the explicit members (docs/targeting.md).

        ``rule`` is a list of constraint sets, each a list of constraints: Unleash's JSON
        objects (``{"contextName": ..., "operator": ..., "values": [...]}``) or
        ``flaggery.engine.rules.Constraint``. ``[]`` matches no request, ``[[]]`` every one.
        Raises GroupNotFound, ValidationError (the message names the constraint and the
        bound), EntityChanged (see `add_group_override`). One transaction; nothing is
        written when the rule is the group's already.
        """
        parsed = parse_rule(rule)
        async with self._db.write("set_group_rule") as tx:
            await keep_before(tx, "group", group_name)
            group = await require_group(tx.conn, group_name)
            await require_unchanged(tx, if_revision, "group", group_name)
            if group.rule == parsed:
                return
            await _write_rule(tx, group_name, encode_rule(parsed))

    async def rm_group_rule(self, group_name: str, *, if_revision: int | None = None) -> None:
        """Remove the group's rule: only its explicit members are in it again. Nothing is
        written when it has none. Raises GroupNotFound, EntityChanged. One transaction."""
        async with self._db.write("rm_group_rule") as tx:
            await keep_before(tx, "group", group_name)
            group = await require_group(tx.conn, group_name)
            await require_unchanged(tx, if_revision, "group", group_name)
            if group.rule is not None:
                await _write_rule(tx, group_name, None)

    async def rm_group(self, group_name: str, *, if_revision: int | None = None) -> None:
        """Delete the group, its overrides and its memberships (not the subjects).

        A fixed number of statements whatever the number of members: every admin write in
        every process waits while this transaction holds the revision lock.

        Raises GroupNotFound, GroupIsUsed (the audience of a rollout or an A/B test),
        EntityChanged (see `add_group_override`). One transaction.
        """
        async with self._db.write("rm_group") as tx:
            await keep_before(tx, "group", group_name)
            group = await require_group(tx.conn, group_name)
            await require_unchanged(tx, if_revision, "group", group_name)
            await _refuse_audience(tx.conn, group_name)
            members = await read_members_without(tx.conn, group_name)
            members_of = t.group_members.c.group == group_name
            await tx.conn.execute(delete(t.group_members).where(members_of))
            await tx.conn.execute(
                delete(t.group_overrides).where(t.group_overrides.c.group == group_name)
            )
            await tx.conn.execute(delete(t.groups).where(t.groups.c.name == group_name))
            tx.record(GroupFact(group_name, None, removed_overrides=tuple(sorted(group.overrides))))
            left = (group_name,)
            tx.record(*(SubjectFact(i, s, left) for i, s in sorted(members.items())))

    async def add_subject_to_group(self, sub_id: int, group_name: str) -> None:
        """Add the subject to the group. It joins last: when two of its groups override the same
        feature, the group joined last wins (docs/semantics.md, "Resolution").

        Raises SubjectNotFound, GroupNotFound, SubjectAlreadyInGroup. One transaction.
        """
        write = SubjectWrite("add_subject_to_group", check_subject_id(sub_id), group=group_name)
        await self._db.apply(write)

    async def add_subjects_to_group(self, sub_ids: Iterable[int], group_name: str) -> None:
        """Add many subjects to the group in one transaction, all or nothing; each joins last
        (as `add_subject_to_group`, in the given order).

        Raises GroupNotFound, SubjectNotFound (naming the first unknown id),
        SubjectAlreadyInGroup (naming the first member), ValidationError (a bad or repeated
        id, more than MAX_BULK_MEMBERS ids, none). A batch of more than MAX_LOGGED_FACTS
        members is logged as one ReloadFact.
        """
        ids = _member_ids(sub_ids)
        async with self._db.write("add_subjects_to_group") as tx:
            await require_group(tx.conn, group_name)
            subjects: dict[int, Subject | None] = {}
            for first in range(0, len(ids), BATCH):
                subjects |= await read_subjects(tx.conn, ids[first : first + BATCH])
            for sid in ids:
                subject = subjects[sid]
                if subject is None:
                    raise SubjectNotFound(f"Subject {sid} does not exist.")
                if group_name in subject.groups:
                    raise SubjectAlreadyInGroup(
                        f"Subject {sid} is in group {group_name!r} already."
                    )
            rows = [{"group": group_name, "subject_id": sid, "joined": tx.revision} for sid in ids]
            await tx.conn.execute(insert(t.group_members), rows)
            if len(ids) > MAX_LOGGED_FACTS:
                tx.record(ReloadFact(len(ids)))
                return
            for sid in ids:
                joined = subjects[sid]
                assert joined is not None  # checked above
                tx.record(
                    SubjectFact(
                        sid, Subject(joined.weight, joined.bucket, (*joined.groups, group_name))
                    )
                )
                tx.remember(SubjectFact(sid, joined))  # History: "joined beta", revertible

    async def rm_subject_from_group(self, sub_id: int, group_name: str) -> None:
        """Remove the subject from the group.

        Raises SubjectNotFound, GroupNotFound, SubjectNotInGroup. One transaction.
        """
        write = SubjectWrite("rm_subject_from_group", check_subject_id(sub_id), group=group_name)
        await self._db.apply(write)

    async def add_group_override(
        self,
        group_name: str,
        feature_name: str,
        variant_name: str,
        *,
        if_revision: int | None = None,
    ) -> None:
        """Members of the group get ``variant_name`` of the feature, whatever else applies.
        An existing override of the same feature is replaced.

        ``if_revision`` (every group write takes it): write only if nothing changed the group
        (created, removed, an override; not a membership) after that revision; else
        EntityChanged, saying which writes did. Raises GroupNotFound, FeatureNotFound,
        VariantNotFound. One transaction.
        """
        async with self._db.write("add_group_override") as tx:
            await keep_before(tx, "group", group_name)
            group = await require_group(tx.conn, group_name)
            await require_variant(tx.conn, feature_name, variant_name)
            await require_unchanged(tx, if_revision, "group", group_name)
            current = group.overrides.get(feature_name)
            if current == variant_name:
                return
            if current is None:
                await tx.conn.execute(
                    insert(t.group_overrides).values(
                        group=group_name, feature=feature_name, variant=variant_name
                    )
                )
            else:
                await tx.conn.execute(
                    update(t.group_overrides)
                    .where(
                        t.group_overrides.c.group == group_name,
                        t.group_overrides.c.feature == feature_name,
                    )
                    .values(variant=variant_name)
                )
            await _record_group(tx, group_name)

    async def rm_group_override(
        self, group_name: str, feature_name: str, *, if_revision: int | None = None
    ) -> None:
        """Remove the group's override of the feature.

        Raises GroupNotFound, OverrideNotFound, EntityChanged (see `add_group_override`). One
        transaction.
        """
        async with self._db.write("rm_group_override") as tx:
            await keep_before(tx, "group", group_name)
            group = await require_group(tx.conn, group_name)
            await require_unchanged(tx, if_revision, "group", group_name)
            if feature_name not in group.overrides:
                raise OverrideNotFound(
                    f"Group {group_name!r} has no override for feature {feature_name!r}."
                )
            await tx.conn.execute(
                delete(t.group_overrides).where(
                    t.group_overrides.c.group == group_name,
                    t.group_overrides.c.feature == feature_name,
                )
            )
            await _record_group(tx, group_name, removed_override=feature_name)


async def _members(conn: AsyncConnection, group_name: str) -> list[int]:
    query = (
        select(t.group_members.c.subject_id)
        .where(t.group_members.c.group == group_name)
        .order_by(t.group_members.c.subject_id)
    )
    return list((await conn.execute(query)).scalars())


async def _record_group(
    tx: WriteTransaction, group_name: str, removed_override: str | None = None
) -> None:
    removed = () if removed_override is None else (removed_override,)
    tx.record(GroupFact(group_name, await require_group(tx.conn, group_name), removed))


async def _write_rule(tx: WriteTransaction, group_name: str, rule: str | None) -> None:
    await tx.conn.execute(update(t.groups).where(t.groups.c.name == group_name).values(rule=rule))
    await _record_group(tx, group_name)


async def _refuse_audience(conn: AsyncConnection, group_name: str) -> None:
    rollouts = select(t.rollouts.c.feature).where(t.rollouts.c.audience == group_name)
    tests = select(t.abtests.c.name).where(t.abtests.c.audience == group_name)
    users = [f"the rollout of {name!r}" for name in (await conn.execute(rollouts)).scalars()]
    users += [f"A/B test {name!r}" for name in (await conn.execute(tests)).scalars()]
    if users:
        raise GroupIsUsed(
            f"Group {group_name!r} is the audience of {', '.join(sorted(users))}: "
            "give those another audience or none first."
        )
