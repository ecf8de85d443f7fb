"""Put entities back as a change-log row recorded them: the writes of revert and restore.

Each function brings one entity (a feature, a rollout, a group, a subject) from its state in
the open write to a target state recorded in the change log (a row's ``before``), records
what it replaced and what it wrote, and refuses with RevertRefused what it cannot restore (a
variant or group since removed, an entity to create or remove). `rows_after` reads the change
log after a revision, this batch's rows included, as both callers check it.
"""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from flaggery.engine.change_words import EntityKey
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
from flaggery.errors import RevertRefused
from flaggery.store import tables as t
from flaggery.store.before_state import current_fact
from flaggery.store.database import WriteTransaction
from flaggery.store.queries import (
    encode_rule,
    encode_value,
    read_features,
    read_groups,
    read_rollouts,
    read_subject,
)
from flaggery.store.rollouts import set_rollout_state

__all__ = ["Logged", "restore_entity", "restore_override", "rows_after"]


class Logged(NamedTuple):
    revision: int
    actor: str | None
    operation: str
    facts: tuple[Fact, ...]
    before: tuple[Fact, ...] | None


async def rows_after(tx: WriteTransaction, revision: int) -> list[Logged]:
    """The change-log rows after `revision`, oldest first, this batch's earlier ones included
    (committed with this write, not yet in the table). One query."""
    log = t.change_log.c
    query = (
        select(log.revision, log.actor, log.operation, log.payload, log.before)
        .where(log.revision > revision)
        .order_by(log.revision)
    )
    rows = [
        Logged(
            row.revision, row.actor, row.operation, decode_facts(row.payload), _facts(row.before)
        )
        for row in await tx.conn.execute(query)
    ]
    for row in tx.earlier:
        actor, before = row["actor"], row["before"]
        rows.append(
            Logged(
                int(str(row["revision"])),
                None if actor is None else str(actor),
                str(row["operation"]),
                decode_facts(str(row["payload"])),
                _facts(None if before is None else str(before)),
            )
        )
    return rows


def _facts(payload: str | None) -> tuple[Fact, ...] | None:
    return None if payload is None else decode_facts(payload)


async def restore_override(
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


async def restore_entity(tx: WriteTransaction, key: EntityKey, target: Fact) -> None:
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
