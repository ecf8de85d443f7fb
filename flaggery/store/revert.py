"""Revert: put back what one change replaced, in one write, previewed first.

A change-log row holds the new state of each entity it changed and (since migration 0015) the
state it replaced. Reverting restores the replaced states, entity by entity, inside one write
transaction (one revision), after checking under the revision lock that no later write changed
any of those entities: a later change is a conflict, named in the refusal, never overwritten.
A rollout comes back by proportion: its remembered buckets (flaggery.engine.restore) make it
get exactly the buckets it had, while the bucket weights are unchanged since.

A preview runs the same write and rolls it back, so what it shows is what the revert does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import msgspec
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from flaggery.engine.change_words import EntityKey, entity_key, sentences
from flaggery.engine.model import (
    DISABLE,
    Fact,
    Feature,
    FeatureFact,
    Group,
    GroupFact,
    Rollout,
    RolloutFact,
    Subject,
    SubjectFact,
    decode_facts,
)
from flaggery.errors import ChangeNotFound, RevertRefused, ValidationError
from flaggery.store import tables as t
from flaggery.store.before_state import current_fact
from flaggery.store.conditions import MAX_CONDITION_SPAN
from flaggery.store.database import Database, WriteTransaction
from flaggery.store.queries import (
    encode_rule,
    encode_value,
    read_features,
    read_groups,
    read_rollouts,
    read_subject,
)
from flaggery.store.rollouts import set_rollout_state

__all__ = ["RevertAdmin", "RevertPreview"]


class RevertPreview(msgspec.Struct, frozen=True):
    """What reverting `revision` changes: one sentence per entity, before -> after."""

    revision: int
    """The change to revert."""
    sentences: tuple[str, ...]
    """Empty: everything it changed is as it was before it already (nothing to write)."""
    written: int | None = None
    """The revert's own revision (None for a preview, or when nothing had to change)."""


class _Previewed(Exception):
    """Rolls a preview's write back, carrying what it would have written."""

    def __init__(self, facts: list[Fact], before: list[Fact]) -> None:
        super().__init__("preview")
        self.facts, self.before = facts, before


class RevertAdmin:
    _db: Database

    async def preview_revert(self, revision: int) -> RevertPreview:
        """What `revert` would change, in words; nothing is written. Raises as `revert`."""
        try:
            async with self._db.write("revert") as tx:
                await _revert(tx, revision)
                raise _Previewed(tx.facts, tx.before)
        except _Previewed as preview:
            return RevertPreview(revision, tuple(sentences(preview.facts, preview.before)))
        return RevertPreview(revision, ())  # pragma: no cover - the block always raises

    async def revert(self, revision: int) -> RevertPreview:
        """Undo the change made at `revision`: every entity it changed (a feature's default,
        variants, values or kill switch; a rollout; a group's overrides or rule; a subject's
        weight or groups) gets back the state it replaced, in one write with its own revision.
        A reverted rollout gets exactly its old buckets back while the bucket weights are
        unchanged (sticky allocation). Returns what changed and the revert's revision.

        Raises ChangeNotFound (no such revision in the log), RevertRefused (a later change
        touched one of those entities: the message names it; the change was written before
        migration 0015 or was too large to itemize; it created or removed an A/B test, a
        group or a subject; or what it would restore is no longer valid), ValidationError,
        DatabaseUnavailable. Nothing is written when refused.
        """
        async with self._db.write(f"revert {revision}"[:64]) as tx:
            await _revert(tx, revision)
        written = tx.revision if tx.facts else None
        return RevertPreview(revision, tuple(sentences(tx.facts, tx.before)), written)

    async def preview_restore_feature(self, feature_name: str, revision: int) -> RevertPreview:
        """What `restore_feature` would change, in words; nothing is written. Raises as it."""
        try:
            async with self._db.write("restore") as tx:
                await _restore_as_of(tx, feature_name, revision)
                raise _Previewed(tx.facts, tx.before)
        except _Previewed as preview:
            return RevertPreview(revision, tuple(sentences(preview.facts, preview.before)))
        return RevertPreview(revision, ())  # pragma: no cover - the block always raises

    async def restore_feature(self, feature_name: str, revision: int) -> RevertPreview:
        """Put the feature back as it was at `revision`, in one write: itself (default,
        variants, values, kill switch), its rollout (exactly its buckets of then, while the
        bucket weights are unchanged) and every group's override of it; later changes to them
        are undone together, A/B tests are left as they are. Returns what changed and the
        write's revision (None: nothing to change).

        Raises ValidationError (a revision after the head), RevertRefused (a change since
        was written before migration 0015; the feature did not exist then or does not now;
        more than 10,000 writes since; what it would restore is no longer valid),
        DatabaseUnavailable. Nothing is written when refused."""
        async with self._db.write(f"restore {feature_name} as of {revision}"[:64]) as tx:
            await _restore_as_of(tx, feature_name, revision)
        written = tx.revision if tx.facts else None
        return RevertPreview(revision, tuple(sentences(tx.facts, tx.before)), written)


class _Logged(NamedTuple):
    revision: int
    actor: str | None
    operation: str
    facts: tuple[Fact, ...]


async def _revert(tx: WriteTransaction, revision: int) -> None:
    if isinstance(revision, bool) or not isinstance(revision, int) or revision < 1:
        raise ChangeNotFound(f"There is no change with revision {revision!r:.40}.")
    log = t.change_log.c
    query = select(log.payload, log.before).where(log.revision == revision)
    row = (await tx.conn.execute(query)).one_or_none()
    if row is None:
        raise ChangeNotFound(
            f"There is no change with revision {revision} (never written, or pruned by retention)."
        )
    before = None if row.before is None else decode_facts(row.before)
    targets = _targets(decode_facts(row.payload), before, revision)
    await _refuse_later(tx, revision, set(targets))
    for key, target in targets.items():
        await _restore(tx, key, target)


def _targets(
    facts: Sequence[Fact], before: Sequence[Fact] | None, revision: int
) -> dict[EntityKey, Fact]:
    """Entity -> the fact to restore it to, features first (a rollout needs its variant)."""
    order = {"feature": 0, "group": 1, "rollout": 2, "subject": 3}
    for fact in facts:
        key = entity_key(fact)
        if key is None or key[0] not in order:
            raise RevertRefused(
                f"Revision {revision} cannot be reverted: it {_kind_words(fact)}, which a "
                "revert does not undo."
            )
    if before is None:
        raise RevertRefused(
            f"Revision {revision} cannot be reverted: it was written before flaggery recorded "
            "what a change replaced (migration 0015), or it was too large to itemize. Make the "
            "change back by hand."
        )
    earlier = {entity_key(fact): fact for fact in before}
    targets: dict[EntityKey, Fact] = {}
    for fact in facts:
        key = entity_key(fact)
        assert key is not None
        was = earlier.get(key)
        if was is None:
            raise RevertRefused(
                f"Revision {revision} cannot be reverted: it did not record what {key[0]} "
                f"{key[1]} was before it (a bulk write). Make the change back by hand."
            )
        targets[key] = was
    return dict(sorted(targets.items(), key=lambda item: order[item[0][0]]))


def _entity_words(key: EntityKey) -> str:
    kind, name = key
    return f"the rollout of {name}" if kind == "rollout" else f"{kind} {name}"


def _kind_words(fact: Fact) -> str:
    key = entity_key(fact)
    if key is None:
        return "added buckets or changed many things at once"
    if key[0] == "abtest":
        return f"changed A/B test {key[1]} (stop or remove the test on its page instead)"
    return f"changed {key[0]} {key[1]}"


async def _refuse_later(tx: WriteTransaction, revision: int, keys: set[EntityKey]) -> None:
    """RevertRefused if a write after `revision` changed one of `keys`."""
    head = tx.revision - 1
    if head - revision > MAX_CONDITION_SPAN:
        raise RevertRefused(
            f"Revision {revision} is more than {MAX_CONDITION_SPAN} writes old: too far back "
            "to check what changed since. Make the change back by hand."
        )
    log = t.change_log.c
    query = (
        select(log.revision, log.actor, log.operation, log.payload)
        .where(log.revision > revision)
        .order_by(log.revision)
    )
    later = [
        _Logged(row.revision, row.actor, row.operation, decode_facts(row.payload))
        for row in await tx.conn.execute(query)
    ]
    later += [
        _Logged(
            int(str(row["revision"])),
            None if row["actor"] is None else str(row["actor"]),
            str(row["operation"]),
            decode_facts(str(row["payload"])),
        )
        for row in tx.earlier
    ]
    for logged in later:
        for fact in logged.facts:
            key = entity_key(fact)
            if key in keys:
                assert key is not None
                by = f" by {logged.actor}" if logged.actor else ""
                raise RevertRefused(
                    f"Revision {revision} cannot be reverted: revision {logged.revision} "
                    f"({logged.operation}{by}) changed {_entity_words(key)} after it. "
                    f"Revert revision {logged.revision} first, or change it by hand."
                )


async def _restore_as_of(tx: WriteTransaction, feature: str, revision: int) -> None:
    head = tx.revision - 1
    if isinstance(revision, bool) or not isinstance(revision, int) or not 0 <= revision <= head:
        raise ValidationError(
            f"revision must be a revision from 0 to the latest, {head}, got {revision!r:.40}."
        )
    if head - revision > MAX_CONDITION_SPAN:
        raise RevertRefused(
            f"Revision {revision} is more than {MAX_CONDITION_SPAN} writes old: too far back "
            "to restore from. Make the changes back by hand."
        )
    targets: dict[EntityKey, Fact] = {}
    for logged, before in await _later_rows(tx, revision):
        for fact in logged.facts:
            key = entity_key(fact)
            if key is None or key in targets or not _concerns(fact, feature):
                continue
            was = {entity_key(b): b for b in before or ()}.get(key)
            if was is None:
                raise RevertRefused(
                    f"{feature} cannot be restored as of revision {revision}: revision "
                    f"{logged.revision} did not record what it replaced (written before "
                    "migration 0015, or a bulk write). Make the changes back by hand."
                )
            targets[key] = was
    feature_target = targets.pop(("feature", feature), None)
    if feature_target is not None:
        await _restore(tx, ("feature", feature), feature_target)
    for key, target in targets.items():
        if isinstance(target, GroupFact):
            await _restore_override(tx, target.name, feature, target.group)
        else:
            await _restore(tx, key, target)


def _concerns(fact: Fact, feature: str) -> bool:
    """Whether `fact` changed the feature itself, its rollout or a group's override of it."""
    match fact:
        case FeatureFact(name=name) | RolloutFact(feature=name):
            return name == feature
        case GroupFact(group=group, removed_overrides=removed):
            return feature in removed or (group is not None and feature in group.overrides)
        case _:
            return False


async def _later_rows(
    tx: WriteTransaction, revision: int
) -> list[tuple[_Logged, tuple[Fact, ...] | None]]:
    log = t.change_log.c
    query = (
        select(log.revision, log.actor, log.operation, log.payload, log.before)
        .where(log.revision > revision)
        .order_by(log.revision)
    )
    rows = [
        (
            _Logged(row.revision, row.actor, row.operation, decode_facts(row.payload)),
            None if row.before is None else decode_facts(row.before),
        )
        for row in await tx.conn.execute(query)
    ]
    for row in tx.earlier:
        before = row["before"]
        logged = _Logged(
            int(str(row["revision"])),
            None if row["actor"] is None else str(row["actor"]),
            str(row["operation"]),
            decode_facts(str(row["payload"])),
        )
        rows.append((logged, None if before is None else decode_facts(str(before))))
    return rows


async def _restore_override(
    tx: WriteTransaction, group_name: str, feature: str, then: Group | None
) -> None:
    """Give the group's override of `feature` back its value of then (None: no override)."""
    variant = None if then is None else then.overrides.get(feature)
    current = (await read_groups(tx.conn, group_name)).get(group_name)
    if current is None:
        if variant is None:
            return
        raise RevertRefused(
            f"Group {group_name} overrode {feature} with {variant} then, and no longer exists."
        )
    if current.overrides.get(feature) == variant:
        return
    if variant is not None:
        overrides = dict(current.overrides)
        overrides[feature] = variant
        target = Group(group_name, overrides, current.rule)
    else:
        target = Group(
            group_name, {f: v for f, v in current.overrides.items() if f != feature}, current.rule
        )
    await _restore_group(tx, group_name, target)


async def _restore(tx: WriteTransaction, key: EntityKey, target: Fact) -> None:
    match target:
        case FeatureFact(name=name, feature=feature):
            await _restore_feature(tx, name, feature)
        case RolloutFact(feature=name, rollout=rollout):
            await _restore_rollout(tx, name, rollout)
        case GroupFact(name=name, group=group):
            await _restore_group(tx, name, group)
        case SubjectFact(id=sub_id, subject=subject):
            await _restore_subject(tx, sub_id, subject)
        case _:
            raise RevertRefused(f"{key[0].capitalize()} {key[1]} is not reverted.")


async def _restore_feature(tx: WriteTransaction, name: str, target: Feature | None) -> None:
    current = (await read_features(tx.conn, name)).get(name)
    if target is None or current is None:
        raise RevertRefused(
            f"Reverting would {'remove' if target is None else 're-create'} feature {name}: "
            "a revert does not create or remove features. Do it on the Features page."
        )
    if current == target:
        return
    tx.remember(FeatureFact(name, current))
    conn, variants = tx.conn, t.variants
    for variant in target.variants:
        value = encode_value(target.values.get(variant))
        if variant not in current.variants:
            await conn.execute(
                insert(variants).values(
                    feature=name, name=variant, disabling=variant == DISABLE, value=value
                )
            )
        elif current.values.get(variant) != target.values.get(variant):
            await conn.execute(
                update(variants)
                .where(variants.c.feature == name, variants.c.name == variant)
                .values(value=value)
            )
    await conn.execute(
        update(t.features)
        .where(t.features.c.name == name)
        .values(default_variant=target.default, killed=target.killed)
    )
    gone = [variant for variant in current.variants if variant not in target.variants]
    for variant in gone:
        await _refuse_used_variant(conn, name, variant)
        await conn.execute(
            delete(variants).where(variants.c.feature == name, variants.c.name == variant)
        )
    tx.record(await current_fact(tx, "feature", name))


async def _refuse_used_variant(conn: AsyncConnection, feature: str, variant: str) -> None:
    rollout = (await read_rollouts(conn, feature)).get(feature)
    overrides = t.group_overrides.c
    overridden = await conn.execute(
        select(overrides.group).where(overrides.feature == feature, overrides.variant == variant)
    )
    tested = t.abtest_group_variants.c
    in_tests = await conn.execute(
        select(tested.test).where(tested.feature == feature, tested.variant == variant)
    )
    users = [f"group {group}'s override" for group in overridden.scalars()]
    users += [f"A/B test {test}" for test in in_tests.scalars()]
    if rollout is not None and rollout.variant == variant:
        users.append("the rollout")
    if users:
        raise RevertRefused(
            f"Reverting would remove variant {variant} of {feature}, which {', '.join(users)} "
            "uses now: change that first."
        )


async def _restore_rollout(tx: WriteTransaction, feature: str, target: Rollout | None) -> None:
    current = (await read_rollouts(tx.conn, feature)).get(feature)
    if current == target:
        return
    tx.remember(RolloutFact(feature, current))
    if target is not None:
        features = await read_features(tx.conn, feature)
        if feature not in features or target.variant not in features[feature].variants:
            raise RevertRefused(
                f"Reverting would roll out variant {target.variant} of {feature}, which it no "
                "longer has."
            )
        if target.audience is not None and not await read_groups(tx.conn, target.audience):
            raise RevertRefused(
                f"Reverting would give the rollout of {feature} the audience "
                f"{target.audience}, a group that no longer exists."
            )
    await set_rollout_state(tx.conn, feature, current, target)
    tx.record(await current_fact(tx, "rollout", feature))


async def _restore_group(tx: WriteTransaction, name: str, target: Group | None) -> None:
    current = (await read_groups(tx.conn, name)).get(name)
    if target is None or current is None:
        raise RevertRefused(
            f"Reverting would {'remove' if target is None else 're-create'} group {name}: "
            "a revert does not create or remove groups. Do it on the Groups page."
        )
    if current == target:
        return
    tx.remember(GroupFact(name, current))
    conn, overrides = tx.conn, t.group_overrides
    features = await read_features(conn)
    for feature, variant in target.overrides.items():
        if variant not in getattr(features.get(feature), "variants", ()):
            raise RevertRefused(
                f"Reverting would make group {name} override {feature} with {variant}, which "
                "that feature no longer has."
            )
    await conn.execute(delete(overrides).where(overrides.c.group == name))
    if target.overrides:
        await conn.execute(
            insert(overrides),
            [{"group": name, "feature": f, "variant": v} for f, v in target.overrides.items()],
        )
    await conn.execute(
        update(t.groups).where(t.groups.c.name == name).values(rule=encode_rule(target.rule))
    )
    removed = tuple(sorted(set(current.overrides) - set(target.overrides)))
    after = (await read_groups(conn, name))[name]
    tx.record(GroupFact(name, after, removed))


async def _restore_subject(tx: WriteTransaction, sub_id: int, target: Subject | None) -> None:
    current = await read_subject(tx.conn, sub_id)
    if target is None or current is None:
        raise RevertRefused(
            f"Reverting would {'remove' if target is None else 'add back'} subject {sub_id}: "
            "a revert does not add or remove subjects. Do it on the Subjects page."
        )
    if current == target:
        return
    tx.remember(SubjectFact(sub_id, current))
    conn, members = tx.conn, t.group_members
    if current.weight != target.weight:
        delta = target.weight - current.weight
        await conn.execute(
            update(t.subjects).where(t.subjects.c.id == sub_id).values(weight=target.weight)
        )
        await conn.execute(
            update(t.buckets)
            .where(t.buckets.c.id == current.bucket)
            .values(weight=t.buckets.c.weight + delta)
        )
    groups = set((await read_groups(conn)).keys())
    missing = [group for group in target.groups if group not in groups]
    if missing:
        raise RevertRefused(
            f"Reverting would put subject {sub_id} back in {', '.join(missing)}, which no "
            "longer exists."
        )
    left = tuple(group for group in current.groups if group not in target.groups)
    if left:
        await conn.execute(
            delete(members).where(members.c.subject_id == sub_id, members.c.group.in_(left))
        )
    joined = [group for group in target.groups if group not in current.groups]
    if joined:
        await conn.execute(
            insert(members),
            [{"group": g, "subject_id": sub_id, "joined": tx.revision} for g in joined],
        )
    after = await read_subject(conn, sub_id)
    tx.record(SubjectFact(sub_id, after, left))
