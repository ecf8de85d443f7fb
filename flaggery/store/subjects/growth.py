"""New buckets shared out: every rollout and every A/B test that has not ended takes its share.

A growth to m >= 2 times the buckets in one call *splits* them: the first (m - 1) x B new
buckets are children of the old ones (flaggery.engine.targeting.bucket_index), each joining
exactly the rollouts and test groups of its parent (a rollout holding k of B buckets holds mk
of mB), so hashed keys that move into a child keep their variants. Each carry takes the
difference from what dealing would have given (`allocation.split_carries`); if one would leave
(-1, 1], the growth is dealt instead. The buckets beyond m x B, and every growth with m = 1,
are dealt by count.

Part of `increase_buckets`' transaction. The change-log row says only what changed (the new
bucket range and the new buckets each rollout and test group took, one `GrowthFact`), and the
rows go in one statement per table (flaggery.store.subjects.bulk): adding 100 buckets to 1,000
with 20 rollouts and 5 tests logged about 130 KB and took hundreds of milliseconds when every
grown rollout's and test's whole bucket set was read, logged and inserted row by row.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import bindparam, insert, select, update

from flaggery.engine.allocation import grow_abtest, grow_rollout, split_carries
from flaggery.engine.model import GrownTest, GrowthFact
from flaggery.store import tables as t
from flaggery.store.database import WriteTransaction
from flaggery.store.subjects.bulk import insert_rows

__all__ = ["grow_allocations"]


async def grow_allocations(
    tx: WriteTransaction, new_ids: list[int], old_ids: list[int]
) -> GrowthFact:
    """Give `new_ids` (new, empty, ascending and contiguous) to every rollout and every test
    that has not ended. With m = (old + new) // old >= 2 the first (m - 1) x len(`old_ids`)
    are children of `old_ids` (ascending: every bucket before them) and copy their parents'
    memberships, if every carry stays in (-1, 1] (`split_carries`; the split is then stored in
    `bucket_splits`); the rest are dealt. Stores what each took with its new carry, and
    returns the fact to log. Reads the proportions and carries; bucket sets only to split."""
    multiple = (len(old_ids) + len(new_ids)) // len(old_ids) if old_ids else 1
    held = await _held(tx) if multiple > 1 else _Held({}, {})
    carries = await _split_carries(tx, held, len(old_ids), multiple) if multiple > 1 else None
    children = _children(new_ids, old_ids, multiple) if carries is not None else {}
    if children:  # hashed keys move only into their bucket's children
        await tx.conn.execute(insert(t.bucket_splits).values(start=len(old_ids), multiple=multiple))
    dealt = new_ids[sum(map(len, children.values())) :]
    split = _Split(children, held, carries or {})
    rollouts = await _grow_rollouts(tx, new_ids, dealt, split)
    abtests = await _grow_abtests(tx, dealt, split)
    return GrowthFact(new_ids[0], new_ids[-1], rollouts, abtests, multiple if children else 1)


@dataclass(frozen=True)
class _Held:
    """The buckets each rollout and each test group holds before the growth."""

    rollouts: dict[str, set[int]]
    groups: dict[tuple[str, str], set[int]]


@dataclass(frozen=True)
class _Split:
    """A split's children of each old bucket, what held them, and the carries after it
    (rollout: feature; test group: (test, group)); all empty when the growth is dealt."""

    children: dict[int, list[int]]
    held: _Held
    carries: dict[str | tuple[str, str], float]


async def _held(tx: WriteTransaction) -> _Held:
    rb, gb = t.rollout_buckets.c, t.abtest_group_buckets.c
    rollouts: dict[str, set[int]] = defaultdict(set)
    for feature, bucket in await tx.conn.execute(select(rb.feature, rb.bucket_id)):
        rollouts[feature].add(bucket)
    groups: dict[tuple[str, str], set[int]] = defaultdict(set)
    for test, group, member in await tx.conn.execute(select(gb.test, gb.group, gb.bucket_id)):
        groups[test, group].add(member)
    return _Held(rollouts, groups)


async def _split_carries(
    tx: WriteTransaction, held: _Held, buckets: int, multiple: int
) -> dict[str | tuple[str, str], float] | None:
    """Every rollout's and live test group's carry after the split, or None if one would
    leave its bounds (then the growth is dealt by count)."""
    after: dict[str | tuple[str, str], float] = {}
    r = t.rollouts.c
    for feature, proportion, carry in await tx.conn.execute(
        select(r.feature, r.proportion, r.carry)
    ):
        count = len(held.rollouts.get(feature, ()))
        new = split_carries(
            [proportion, 1 - proportion],
            [count, buckets - count],
            [carry, -carry],
            buckets,
            multiple,
        )
        if new is None:
            return None
        after[feature] = new[0]
    for test, members in (await _live_groups(tx)).items():
        counts = [len(held.groups.get((test, group), ())) for group, _, _ in members]
        new = split_carries(
            [p for _, p, _ in members], counts, [c for _, _, c in members], buckets, multiple
        )
        if new is None:
            return None
        after.update({(test, group): c for (group, _, _), c in zip(members, new, strict=True)})
    return after


async def _live_groups(tx: WriteTransaction) -> dict[str, list[tuple[str, float, float]]]:
    """test -> its groups (name, proportion, carry), for every test that has not ended."""
    a, g = t.abtests, t.abtest_groups
    query = (
        select(g.c.test, g.c.name, g.c.proportion, g.c.carry, a.c.end)
        .join(a, a.c.name == g.c.test)
        .order_by(g.c.test, g.c.position)
    )
    groups: dict[str, list[tuple[str, float, float]]] = defaultdict(list)
    for test, group, proportion, carry, end in await tx.conn.execute(query):
        if end > tx.now:  # compared here: SQLite keeps datetimes as text
            groups[test].append((group, proportion, carry))
    return groups


def _children(new_ids: list[int], old_ids: list[int], multiple: int) -> dict[int, list[int]]:
    """old bucket -> its children in a split by `multiple` (flaggery.engine.targeting.Split:
    the child at index S + i x (m - 1) + c has the parent at index i); empty for m < 2."""
    if multiple < 2:
        return {}
    per_parent = multiple - 1
    return {
        parent: new_ids[i * per_parent : (i + 1) * per_parent] for i, parent in enumerate(old_ids)
    }


def _copied(held: set[int], children: dict[int, list[int]]) -> list[int]:
    """The children of the held buckets: what a rollout or test group takes in a split."""
    return [child for parent in sorted(held) for child in children.get(parent, ())]


async def _grow_rollouts(
    tx: WriteTransaction, new_ids: list[int], dealt: list[int], split: _Split
) -> dict[str, list[int]]:
    """Every rollout copies its buckets' children and takes its share of `dealt`
    (`grow_rollout`), remembering which buckets it took and left (one `rollout_deals` row:
    that orders them for later raises) and the remainder it is owed."""
    r = t.rollouts
    query = select(r.c.feature, r.c.proportion, r.c.carry).order_by(r.c.feature)
    taken: dict[str, list[int]] = {}
    deal_rows, bucket_rows, carry_rows = [], [], []
    for feature, proportion, carry in await tx.conn.execute(query):
        carry = split.carries.get(feature, carry)
        joined, _, carry = grow_rollout(dealt, proportion, carry, feature)
        joined = _copied(split.held.rollouts.get(feature, set()), split.children) + joined
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


async def _grow_abtests(
    tx: WriteTransaction, dealt: list[int], split: _Split
) -> dict[str, GrownTest]:
    """In every test that has not ended, each group copies its buckets' children and `dealt`
    is dealt among the groups (`grow_abtest`); an ended test's record stays as it ended."""
    g, v = t.abtest_groups, t.abtest_group_variants
    groups = await _live_groups(tx)
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
        members = [(gr, p, split.carries.get((name, gr), c)) for gr, p, c in groups[name]]
        shares, carries = grow_abtest(
            dealt, [p for _, p, _ in members], [c for _, _, c in members], name
        )
        took = [
            _copied(split.held.groups.get((name, group), set()), split.children) + share
            for (group, _, _), share in zip(members, shares, strict=True)
        ]
        for (group, _, _), buckets, carry in zip(members, took, carries, strict=True):
            bucket_rows += [{"test": name, "group": group, "bucket_id": b} for b in buckets]
            carry_rows.append({"key_test": name, "key_group": group, "carry": carry})
        taken = {group: buckets for (group, _, _), buckets in zip(members, took, strict=True)}
        grown[name] = GrownTest(tuple(sorted(features[name])), taken)
    await insert_rows(tx.conn, t.abtest_group_buckets, bucket_rows)
    await tx.conn.execute(
        update(g)
        .where(g.c.test == bindparam("key_test"), g.c.name == bindparam("key_group"))
        .values(carry=bindparam("carry")),
        carry_rows,
    )
    return grown
