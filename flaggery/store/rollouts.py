"""Admin operations on rollouts: one per feature, grown and shrunk by bucket."""

from __future__ import annotations

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from flaggery.engine.allocation import rollout_buckets
from flaggery.engine.model import Rollout, RolloutFact
from flaggery.errors import RolloutExists, RolloutNotFound
from flaggery.store import tables as t
from flaggery.store.database import Database, WriteTransaction
from flaggery.store.features import require_variant
from flaggery.store.queries import read_bucket_weights, read_rollouts
from flaggery.store.records import RolloutRecord
from flaggery.store.validation import check_proportion, storable

__all__ = ["RolloutsAdmin"]


class RolloutsAdmin:
    _db: Database

    async def add_rollout(self, variant_name: str, feature_name: str) -> None:
        """Create the feature's rollout of ``variant_name``, at proportion 0 (no bucket).

        Raises FeatureNotFound, VariantNotFound, RolloutExists (one rollout per feature). One
        transaction.
        """
        async with self._db.write("add_rollout") as tx:
            await require_variant(tx.conn, feature_name, variant_name)
            if (await read_rollouts(tx.conn, feature_name)).get(feature_name):
                raise RolloutExists(
                    f"Feature {feature_name!r} has a rollout already: "
                    "change its variant with set_rollout_variant()."
                )
            await tx.conn.execute(
                insert(t.rollouts).values(
                    feature=feature_name, variant=variant_name, proportion=0.0
                )
            )
            tx.record(
                RolloutFact(feature_name, Rollout(feature_name, variant_name, 0.0, frozenset()))
            )

    async def get_rollout(self, feature_name: str) -> RolloutRecord:
        """The feature's rollout: variant, proportion (0 to 1), effective weight (the sum of
        its buckets' weights) and bucket ids.

        Raises RolloutNotFound.
        """
        async with self._db.read() as conn:
            rollout = await _require_rollout(conn, feature_name)
            weight = await _effective_weight(conn, rollout.buckets)
        return RolloutRecord(
            feature_name, rollout.variant, rollout.proportion, weight, sorted(rollout.buckets)
        )

    async def set_rollout_variant(self, variant_name: str, feature_name: str) -> None:
        """Roll out ``variant_name`` instead; the rollout keeps its buckets and proportion.

        Raises RolloutNotFound, VariantNotFound. One transaction.
        """
        async with self._db.write("set_rollout_variant") as tx:
            await require_variant(tx.conn, feature_name, variant_name)
            rollout = await _require_rollout(tx.conn, feature_name)
            if rollout.variant == variant_name:
                return
            await tx.conn.execute(
                update(t.rollouts)
                .where(t.rollouts.c.feature == feature_name)
                .values(variant=variant_name)
            )
            await _record(tx, feature_name)

    async def set_rollout_proportion(self, feature_name: str, proportion: float) -> None:
        """Move the rollout to ``proportion`` (0 to 1: 0.07 for 7%) of the total weight.

        Raising it only adds buckets and lowering it only removes buckets, so subjects that get
        the variant keep it as the rollout grows (docs/semantics.md, "Allocation"). Setting the
        current proportion again is a no-op. Raises RolloutNotFound, InvalidRolloutProportion.
        One transaction; O(buckets log buckets).
        """
        proportion = check_proportion(proportion)
        async with self._db.write("set_rollout_proportion") as tx:
            rollout = await _require_rollout(tx.conn, feature_name)
            if rollout.proportion == proportion:
                return
            weights = await read_bucket_weights(tx.conn)
            chosen = rollout_buckets(weights, rollout.buckets, proportion)
            await _replace_buckets(tx.conn, feature_name, rollout.buckets, chosen)
            await tx.conn.execute(
                update(t.rollouts)
                .where(t.rollouts.c.feature == feature_name)
                .values(proportion=proportion)
            )
            await _record(tx, feature_name)


async def _require_rollout(conn: AsyncConnection, feature_name: str) -> Rollout:
    rollout = None
    if storable(feature_name):
        rollout = (await read_rollouts(conn, feature_name)).get(feature_name)
    if rollout is None:
        raise RolloutNotFound(
            f"Feature {feature_name!r} has no rollout: create one with add_rollout()."
        )
    return rollout


async def _effective_weight(conn: AsyncConnection, buckets: frozenset[int]) -> int:
    if not buckets:
        return 0
    query = select(func.coalesce(func.sum(t.buckets.c.weight), 0)).where(
        t.buckets.c.id.in_(sorted(buckets))
    )
    return int((await conn.execute(query)).scalar_one())


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
