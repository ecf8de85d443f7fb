"""New buckets shared out: every rollout and every A/B test that has not ended takes its share.

Part of `increase_buckets`' transaction. The change-log row says only what changed (the new
bucket range and the new buckets each rollout and test group took, one `GrowthFact`), and the
rows go in one statement per table (flaggery.store.subjects.bulk): adding 100 buckets to 1,000
with 20 rollouts and 5 tests logged about 130 KB and took hundreds of milliseconds when every
grown rollout's and test's whole bucket set was read, logged and inserted row by row.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import bindparam, select, update

from flaggery.engine.allocation import grow_abtest, grow_rollout
from flaggery.engine.model import GrownTest, GrowthFact
from flaggery.store import tables as t
from flaggery.store.database import WriteTransaction
from flaggery.store.subjects.bulk import insert_rows

__all__ = ["grow_allocations"]


async def grow_allocations(tx: WriteTransaction, new_ids: list[int]) -> GrowthFact:
    """Deal `new_ids` (new, empty, ascending and contiguous) to every rollout and every test
    that has not ended, store what each took with its new carry, and return the fact to log.
    Reads the rollouts' and tests' proportions and carries, never their bucket sets."""
    rollouts = await _grow_rollouts(tx, new_ids)
    abtests = await _grow_abtests(tx, new_ids)
    return GrowthFact(new_ids[0], new_ids[-1], rollouts, abtests)


async def _grow_rollouts(tx: WriteTransaction, new_ids: list[int]) -> dict[str, list[int]]:
    """Every rollout takes its share (`grow_rollout`), remembering which buckets it took and
    left (one `rollout_deals` row: that orders them for later raises) and the remainder it is
    owed."""
    r = t.rollouts
    query = select(r.c.feature, r.c.proportion, r.c.carry).order_by(r.c.feature)
    taken: dict[str, list[int]] = {}
    deal_rows, bucket_rows, carry_rows = [], [], []
    for feature, proportion, carry in await tx.conn.execute(query):
        joined, _, carry = grow_rollout(new_ids, proportion, carry, feature)
        took = set(joined)
        flags = "".join("1" if bucket in took else "0" for bucket in new_ids)
        deal_rows.append(
            {
                "feature": feature,
                "first_bucket": new_ids[0],
                "last_bucket": new_ids[-1],
                "joined": flags,
            }
        )
        bucket_rows += [{"feature": feature, "bucket_id": b} for b in joined]
        carry_rows.append({"key": feature, "carry": carry})
        if joined:
            taken[feature] = joined
    if not carry_rows:
        return taken
    await insert_rows(tx.conn, t.rollout_deals, deal_rows)
    await insert_rows(tx.conn, t.rollout_buckets, bucket_rows)
    await tx.conn.execute(
        update(r).where(r.c.feature == bindparam("key")).values(carry=bindparam("carry")),
        carry_rows,
    )
    return taken


async def _grow_abtests(tx: WriteTransaction, new_ids: list[int]) -> dict[str, GrownTest]:
    """Every test that has not ended deals the new buckets among its groups (`grow_abtest`);
    an ended test's record stays as it ended."""
    a, g, v = t.abtests, t.abtest_groups, t.abtest_group_variants
    query = (
        select(g.c.test, g.c.name, g.c.proportion, g.c.carry, a.c.end)
        .join(a, a.c.name == g.c.test)
        .order_by(g.c.test, g.c.position)
    )
    groups: dict[str, list[tuple[str, float, float]]] = defaultdict(list)
    for test, group, proportion, carry, end in await tx.conn.execute(query):
        if end > tx.now:  # compared here: SQLite keeps datetimes as text
            groups[test].append((group, proportion, carry))
    names = sorted(groups)
    if not names:
        return {}
    features: dict[str, set[str]] = defaultdict(set)
    for test, feature in await tx.conn.execute(
        select(v.c.test, v.c.feature).where(v.c.test.in_(names)).distinct()
    ):
        features[test].add(feature)
    grown: dict[str, GrownTest] = {}
    bucket_rows, carry_rows = [], []
    for name in names:
        members = groups[name]
        dealt, carries = grow_abtest(
            new_ids, [p for _, p, _ in members], [c for _, _, c in members], name
        )
        for (group, _, _), buckets, carry in zip(members, dealt, carries, strict=True):
            bucket_rows += [{"test": name, "group": group, "bucket_id": b} for b in buckets]
            carry_rows.append({"key_test": name, "key_group": group, "carry": carry})
        taken = {group: buckets for (group, _, _), buckets in zip(members, dealt, strict=True)}
        grown[name] = GrownTest(tuple(sorted(features[name])), taken)
    await insert_rows(tx.conn, t.abtest_group_buckets, bucket_rows)
    await tx.conn.execute(
        update(g)
        .where(g.c.test == bindparam("key_test"), g.c.name == bindparam("key_group"))
        .values(carry=bindparam("carry")),
        carry_rows,
    )
    return grown
