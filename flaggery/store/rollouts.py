"""Admin operations on rollouts: one per feature, grown and shrunk by bucket."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from flaggery.engine.allocation import rollout_buckets
from flaggery.engine.bucket_order import rollout_order
from flaggery.engine.model import Rollout, RolloutFact
from flaggery.engine.restore import (
    RestoreMemory,
    decode_memory,
    encode_memory,
    recall,
    remember,
    weights_fingerprint,
)
from flaggery.errors import RolloutExists, RolloutNotFound, ValidationError
from flaggery.store import tables as t
from flaggery.store.before_state import keep_before
from flaggery.store.conditions import require_unchanged
from flaggery.store.database import Database, WriteTransaction
from flaggery.store.features import require_feature, require_variant
from flaggery.store.plans import pause_for_manual_change
from flaggery.store.queries import read_bucket_weights, read_rollouts, require_group
from flaggery.store.records import RolloutRecord, shares
from flaggery.store.validation import check_proportion

__all__ = ["RolloutsAdmin", "set_rollout_state"]


class RolloutsAdmin:
    _db: Database

    async def add_rollout(
        self,
        variant_name: str,
        feature_name: str,
        *,
        proportion: float = 0.0,
        audience: str | None = None,
        if_revision: int | None = None,
    ) -> None:
        """Create the feature's rollout of ``variant_name``, at ``proportion`` (default 0: no
        bucket) and for ``audience`` (a group; None or ``""``: everyone in its buckets, as
        `set_rollout`'s ``""`` clears it), in one write:
        the dashboard's "Apply rollout 10%" on a feature without one is one revision.

        Raises FeatureNotFound, VariantNotFound, RolloutExists (one rollout per feature),
        GroupNotFound, InvalidRolloutProportion, EntityChanged (``if_revision``: see
        `kill_switch`). One transaction.
        """
        proportion = check_proportion(proportion)
        audience = audience or None  # "": no audience, on every entry point (docs/targeting.md)
        async with self._db.write("add_rollout") as tx:
            await keep_before(tx, "rollout", feature_name)
            await require_variant(tx.conn, feature_name, variant_name)
            await require_unchanged(tx, if_revision, "feature", feature_name)
            if (await read_rollouts(tx.conn, feature_name)).get(feature_name):
                raise RolloutExists(
                    f"Feature {feature_name!r} has a rollout already: "
                    "change its variant with set_rollout_variant()."
                )
            if audience is not None:
                await require_group(tx.conn, audience)
            target = Rollout(feature_name, variant_name, proportion, frozenset(), audience)
            await set_rollout_state(tx.conn, feature_name, None, target)
            await _record(tx, feature_name)

    async def get_rollout(self, feature_name: str) -> RolloutRecord:
        """The feature's rollout: variant, proportion (0 to 1), effective weight (the sum of
        its buckets' weights), bucket ids, and its shares of registered weight and of hashed
        targeting keys.

        Raises RolloutNotFound.
        """
        async with self._db.read() as conn:
            rollout = await _require_rollout(conn, feature_name)
            weights = await read_bucket_weights(conn)
        effective, weight_share, key_share = shares(rollout.buckets, weights)
        return RolloutRecord(
            feature_name,
            rollout.variant,
            rollout.proportion,
            effective,
            sorted(rollout.buckets),
            weight_share,
            key_share,
            rollout.audience,
        )

    async def set_rollout_variant(
        self, variant_name: str, feature_name: str, *, if_revision: int | None = None
    ) -> None:
        """Roll out ``variant_name`` instead; the rollout keeps its buckets and proportion.

        Raises RolloutNotFound, VariantNotFound, EntityChanged (see `kill_switch`). One
        transaction.
        """
        await self._set_rollout(
            "set_rollout_variant", feature_name, variant_name, None, if_revision
        )

    async def set_rollout_proportion(
        self, feature_name: str, proportion: float, *, if_revision: int | None = None
    ) -> None:
        """Move the rollout to ``proportion`` (0 to 1: 0.07 for 7%) of the total weight.

        Raising it only adds buckets and lowering it only removes buckets, so subjects that get
        the variant keep it as the rollout grows; moving back to a proportion it left, with the
        bucket weights unchanged since, gives back the same buckets (docs/semantics.md,
        "Allocation"). Setting the current proportion again is a no-op. Raises RolloutNotFound,
        InvalidRolloutProportion, EntityChanged (see `kill_switch`). One transaction;
        O(buckets log buckets).
        """
        await self._set_rollout(
            "set_rollout_proportion", feature_name, None, proportion, if_revision
        )

    async def set_rollout(
        self,
        feature_name: str,
        variant_name: str | None = None,
        proportion: float | None = None,
        audience: str | None = None,
        *,
        if_revision: int | None = None,
    ) -> None:
        """Change the rollout's variant, its proportion, its audience, or several, in one
        transaction (one revision): no replica ever serves the new variant at the old
        proportion. ``audience``: a group name (the variant then goes only to its members,
        explicit or by rule, whose bucket the rollout holds), ``""`` for none (everyone in
        its buckets), None to keep it. Raises ValidationError if nothing is given,
        GroupNotFound for an unknown audience, EntityChanged (see `kill_switch`); nothing
        changes if anything is refused."""
        await self._set_rollout(
            "set_rollout", feature_name, variant_name, proportion, if_revision, audience
        )

    async def set_rollout_audience(
        self, feature_name: str, group_name: str | None, *, if_revision: int | None = None
    ) -> None:
        """Give the rollout an audience (a group), or none (None or ``""``). Raises
        RolloutNotFound, GroupNotFound, EntityChanged. One transaction; nothing is written
        when it is the audience already."""
        audience = "" if group_name is None else group_name
        await self._set_rollout(
            "set_rollout_audience", feature_name, None, None, if_revision, audience
        )

    async def _set_rollout(  # noqa: PLR0913 - every rollout write's parts
        self,
        operation: str,
        feature_name: str,
        variant_name: str | None,
        proportion: float | None,
        if_revision: int | None,
        audience: str | None = None,
    ) -> None:
        if variant_name is None and proportion is None and audience is None:
            raise ValidationError("Give a variant, a proportion, an audience, or several.")
        if proportion is not None:
            proportion = check_proportion(proportion)
        async with self._db.write(operation) as tx:
            await keep_before(tx, "rollout", feature_name)
            if variant_name is not None:
                await require_variant(tx.conn, feature_name, variant_name)
            rollout = await _require_rollout(tx.conn, feature_name)
            await require_unchanged(tx, if_revision, "feature", feature_name)
            changed = False
            if variant_name is not None:
                changed |= await _set_variant(tx.conn, rollout, variant_name)
            if proportion is not None:
                changed |= await _set_proportion(tx.conn, rollout, proportion)
            if audience is not None:
                changed |= await _set_audience(tx.conn, rollout, audience or None)
            if changed:
                await _record(tx, feature_name)
                await pause_for_manual_change(tx, feature_name)

    async def preview_rollout_proportion(self, feature_name: str, proportion: float) -> int:
        """The effective weight (sum of bucket weights) the feature's rollout would hold at
        ``proportion``, chosen exactly as `set_rollout_proportion` would (from no bucket if it
        has no rollout yet); nothing is written. Raises FeatureNotFound,
        InvalidRolloutProportion. One read; O(buckets log buckets)."""
        proportion = check_proportion(proportion)
        async with self._db.read() as conn:
            await require_feature(conn, feature_name)
            rollout = (await read_rollouts(conn, feature_name)).get(feature_name)
            if rollout is None:  # as a new rollout's first move would land
                weights = await read_bucket_weights(conn)
                order = await _rollout_order(conn, feature_name, weights)
                chosen = rollout_buckets(weights, frozenset(), proportion, order)
            elif rollout.proportion == proportion:  # set_rollout_proportion changes nothing
                weights = await read_bucket_weights(conn)
                chosen = rollout.buckets
            else:
                move = await _plan_move(conn, rollout, proportion)
                chosen, weights = move.chosen, move.weights
        return sum(weights[bucket] for bucket in chosen)

    async def rm_rollout(self, feature_name: str, *, if_revision: int | None = None) -> None:
        """Remove the feature's rollout: its subjects fall back to the default variant.
        Raises RolloutNotFound, EntityChanged (see `kill_switch`)."""
        async with self._db.write("rm_rollout") as tx:
            await keep_before(tx, "rollout", feature_name)
            await _require_rollout(tx.conn, feature_name)
            await require_unchanged(tx, if_revision, "feature", feature_name)
            for table in (t.rollout_buckets, t.rollout_deals, t.rollouts):
                await tx.conn.execute(delete(table).where(table.c.feature == feature_name))
            tx.record(RolloutFact(feature_name, None))
            await pause_for_manual_change(tx, feature_name)


async def set_rollout_state(
    conn: AsyncConnection, feature: str, current: Rollout | None, target: Rollout | None
) -> None:
    """Make the feature's rollout `target` (None: no rollout), from `current`, as the rollout
    writes would: a proportion is reached by the same move (remembered buckets included), so a
    rollout put back at a proportion it left gets the buckets it held there. The caller
    checked the variant and audience."""
    if target is None:
        for table in (t.rollout_buckets, t.rollout_deals, t.rollouts):
            await conn.execute(delete(table).where(table.c.feature == feature))
        return
    if current is None:
        await conn.execute(
            insert(t.rollouts).values(
                feature=feature, variant=target.variant, proportion=0.0, audience=target.audience
            )
        )
        current = Rollout(feature, target.variant, 0.0, frozenset(), target.audience)
    await _set_variant(conn, current, target.variant)
    await _set_proportion(conn, current, target.proportion)
    await _set_audience(conn, current, target.audience)


async def _set_variant(conn: AsyncConnection, rollout: Rollout, variant_name: str) -> bool:
    if rollout.variant == variant_name:
        return False
    await conn.execute(
        update(t.rollouts)
        .where(t.rollouts.c.feature == rollout.feature)
        .values(variant=variant_name)
    )
    return True


async def _set_proportion(conn: AsyncConnection, rollout: Rollout, proportion: float) -> bool:
    if rollout.proportion == proportion:
        return False
    move = await _plan_move(conn, rollout, proportion)
    await _replace_buckets(conn, rollout.feature, rollout.buckets, move.chosen)
    memory = remember(
        move.memory,
        move.fingerprint,
        rollout.proportion,
        rollout.buckets,
        move.carry_before,
        move.order,
    )
    await conn.execute(
        update(t.rollouts)
        .where(t.rollouts.c.feature == rollout.feature)
        .values(proportion=proportion, carry=move.carry, restore=encode_memory(memory))
    )
    return True


class _Move(NamedTuple):
    chosen: frozenset[int]
    carry: float
    """The carry after the move: a walk meets its target by weight, so no share of new buckets
    is owed; a remembered state gets its carry back."""
    order: list[int]
    fingerprint: str
    memory: RestoreMemory | None
    carry_before: float
    weights: dict[int, int]


async def _plan_move(conn: AsyncConnection, rollout: Rollout, proportion: float) -> _Move:
    """Where a move of `rollout` to another `proportion` lands: only adding buckets when the
    proportion goes up, only removing them when it goes down; the buckets held before at
    `proportion` if the weights have not changed since (flaggery.engine.restore); else the
    walk's choice (`rollout_buckets`)."""
    weights = await read_bucket_weights(conn)
    order = await _rollout_order(conn, rollout.feature, weights)
    r = t.rollouts
    query = select(r.c.carry, r.c.restore).where(r.c.feature == rollout.feature)
    row = (await conn.execute(query)).one()
    memory = decode_memory(row.restore)
    fingerprint = weights_fingerprint(weights)
    raising = proportion > rollout.proportion
    walked = rollout_buckets(weights, rollout.buckets, proportion, order, raising=raising)
    chosen, carry = recall(
        memory, fingerprint, proportion, rollout.buckets, walked, order, raising=raising
    )
    return _Move(
        chosen, 0.0 if carry is None else carry, order, fingerprint, memory, row.carry, weights
    )


async def _rollout_order(conn: AsyncConnection, feature: str, weights: dict[int, int]) -> list[int]:
    deals = t.rollout_deals
    rows = await conn.execute(
        select(deals.c.first_bucket, deals.c.joined).where(deals.c.feature == feature)
    )
    joined: list[int] = []
    declined: list[int] = []
    for first, flags in rows:
        for bucket, flag in enumerate(flags, start=first):
            (joined if flag == "1" else declined).append(bucket)
    return rollout_order(feature, weights, joined, declined)


async def _set_audience(conn: AsyncConnection, rollout: Rollout, audience: str | None) -> bool:
    if audience == rollout.audience:
        return False
    if audience is not None:
        await require_group(conn, audience)
    await conn.execute(
        update(t.rollouts).where(t.rollouts.c.feature == rollout.feature).values(audience=audience)
    )
    return True


async def _require_rollout(conn: AsyncConnection, feature_name: str) -> Rollout:
    rollout = (await read_rollouts(conn, feature_name)).get(feature_name)
    if rollout is None:
        raise RolloutNotFound(
            f"Feature {feature_name!r} has no rollout: create one with add_rollout()."
        )
    return rollout


async def _replace_buckets(
    conn: AsyncConnection, feature: str, current: frozenset[int], chosen: frozenset[int]
) -> None:
    removed, added = current - chosen, chosen - current
    if removed:
        await conn.execute(
            delete(t.rollout_buckets).where(
                t.rollout_buckets.c.feature == feature,
                t.rollout_buckets.c.bucket_id.in_(sorted(removed)),
            )
        )
    if added:
        await conn.execute(
            insert(t.rollout_buckets), [{"feature": feature, "bucket_id": b} for b in sorted(added)]
        )


async def _record(tx: WriteTransaction, feature_name: str) -> None:
    tx.record(RolloutFact(feature_name, await _require_rollout(tx.conn, feature_name)))
