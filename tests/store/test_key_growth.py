"""Issue 19's growth goal on SQLite and PostgreSQL: doubling the buckets in one call splits
them, and hashed keys keep every variant (at most 1 % may change; none does by design)."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

from flaggery.engine import build_snapshot
from flaggery.engine.evaluation import Evaluation
from flaggery.store.loader import load_state
from flaggery.store.repository import AsyncFlaggery
from tests.engine.naive import naive_bucket_of_key
from tests.fakes import FakeClock

ROLLOUTS = (0.1, 0.25, 0.5, 0.75, 0.9)


async def _seed(store: AsyncFlaggery, clock: FakeClock) -> None:
    """100 buckets, 1,000 subjects, five rollouts and a live 50/50 test (the bench's setup)."""
    rng = random.Random(19)
    await store.increase_buckets(100)
    await store.add_subjects([(i, rng.randint(1, 10)) for i in range(1000)])
    for n, proportion in enumerate(ROLLOUTS):
        await store.add_feature(f"rollout-{n}")
        await store.add_variant("off", f"rollout-{n}", make_default=True)
        await store.add_variant("on", f"rollout-{n}")
        await store.add_rollout("on", f"rollout-{n}")
        await store.set_rollout_proportion(f"rollout-{n}", proportion)
    await store.add_feature("tested")
    await store.add_variant("A", "tested", make_default=True)
    await store.add_variant("B", "tested")
    start = clock.now + timedelta(minutes=1)
    groups = {"control": {"tested": "A"}, "treatment": {"tested": "B"}}
    await store.add_abtest("live", start, start + timedelta(days=30), groups)
    clock.advance(minutes=2)


async def test_doubling_keeps_every_hashed_keys_variants(
    store: AsyncFlaggery, clock: FakeClock
) -> None:
    await _seed(store, clock)
    rng = random.Random(7)
    keys = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(10_000)]
    before = await _evaluated(store, clock, keys)
    held = {f"rollout-{n}": (await store.get_rollout(f"rollout-{n}")) for n in range(5)}
    await store.increase_buckets(100)
    after = await _evaluated(store, clock, keys)
    moved = sum(a.view.bucket != b.view.bucket for a, b in zip(after, before, strict=True))
    changed = sum(dict(a.flags) != dict(b.flags) for a, b in zip(after, before, strict=True))
    assert 0.45 <= moved / len(keys) <= 0.55  # half the keys move, into their buckets' children
    assert all(  # bucket i's child is bucket i + 100
        b.view.bucket is not None and a.view.bucket in (b.view.bucket, b.view.bucket + 100)
        for a, b in zip(after, before, strict=True)
    )
    assert changed / len(keys) <= 0.01
    for feature, record in held.items():  # a rollout of k buckets holds 2k: nothing dealt
        grown = await store.get_rollout(feature)
        assert len(grown.buckets) == 2 * len(record.buckets)
    state = await load_state(store.database)
    assert state.key_splits == ((100, 2),)
    for key, evaluation in zip(keys[:300], after, strict=False):
        assert naive_bucket_of_key(state, key) == evaluation.view.bucket
        # the store's own snapshot, patched by the growth's change-log fact, agrees
        assert (await store.evaluate(key)).view == evaluation.view


async def _evaluated(store: AsyncFlaggery, clock: FakeClock, keys: list[str]) -> list[Evaluation]:
    """What each key gets from a snapshot of a full load (what a new process or an edge
    builds): one load instead of a revision check per key."""
    snapshot = build_snapshot(await load_state(store.database), clock.now)
    return [snapshot.evaluate(key) for key in keys]


async def test_a_growth_that_is_no_multiple_deals_as_before(store: AsyncFlaggery) -> None:
    await store.increase_buckets(100)
    await store.increase_buckets(50)
    state = await load_state(store.database)
    assert state.key_splits == ()
    await store.increase_buckets(150)  # 150 -> 300: a split by 2
    state = await load_state(store.database)
    assert state.key_splits == ((150, 2),)


async def test_a_split_that_would_break_a_carry_is_dealt_instead(store: AsyncFlaggery) -> None:
    """Two equal buckets and a 25 % rollout holding one: doubling leaves its carry at -0.5
    (a split), tripling would take it to -1 (out of (-1, 1]), so that growth is dealt."""
    await store.increase_buckets(2)
    await store.add_subjects([(1, 5), (2, 5)])
    await store.add_feature("f")
    await store.add_variant("off", "f", make_default=True)
    await store.add_variant("on", "f")
    await store.add_rollout("on", "f")
    await store.set_rollout_proportion("f", 0.25)
    assert len((await store.get_rollout("f")).buckets) == 1
    await store.increase_buckets(4)  # 2 -> 6: m = 3
    assert (await load_state(store.database)).key_splits == ()
    await store.increase_buckets(6)  # 6 -> 12: m = 2
    state = await load_state(store.database)
    assert state.key_splits == ((6, 2),)
    held = set(state.rollouts["f"].buckets)
    assert {bucket + 6 for bucket in held if bucket <= 6} <= held  # children of held parents
