"""What a write is about to change, read before it changes it: the change log's ``before``.

A change-log fact holds the new state of one entity; History's "10% -> 50%" and a revert need
the state it replaced. Each write reads the entities it changes once, before changing them,
and `WriteTransaction.remember` keeps them for its change-log row (migration 0015).
"""

from __future__ import annotations

from typing import Literal

from flaggery.engine.model import AbTestFact, Fact, FeatureFact, GroupFact, RolloutFact
from flaggery.store.database import WriteTransaction
from flaggery.store.queries import read_abtests, read_features, read_groups, read_rollouts

__all__ = ["Entity", "current_fact", "keep_before"]

Entity = Literal["feature", "rollout", "group", "abtest"]


async def current_fact(tx: WriteTransaction, entity: Entity, name: str) -> Fact:
    """The entity as it stands in `tx`, as a fact (its state None: it does not exist)."""
    conn = tx.conn
    match entity:
        case "feature":
            return FeatureFact(name, (await read_features(conn, name)).get(name))
        case "rollout":
            return RolloutFact(name, (await read_rollouts(conn, name)).get(name))
        case "group":
            return GroupFact(name, (await read_groups(conn, name)).get(name))
        case "abtest":
            return AbTestFact(name, (await read_abtests(conn, name)).get(name))


async def keep_before(tx: WriteTransaction, entity: Entity, name: str) -> None:
    """Keep the entity as it stands now as the write's "before"."""
    tx.remember(await current_fact(tx, entity, name))
