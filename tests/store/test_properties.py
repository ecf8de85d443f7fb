"""Random operation sequences against a real database keep every invariant.

After each sequence: stored bucket weights equal their sums, A/B tests partition the buckets,
one change-log row per revision, and the snapshot (caught up incrementally through the change
log) resolves every subject exactly as a naive resolution from the rows and as a snapshot
built from scratch. During the sequence: failed writes change nothing, successful ones add
one revision, and rollouts only grow when raised and only shrink when lowered.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert

from flaggery import errors
from flaggery.engine import build_snapshot
from flaggery.store import tables
from flaggery.store.loader import load_state
from flaggery.store.records import RolloutRecord
from flaggery.store.repository import AsyncFlaggery
from tests.dbcheck import check_invariants, naive_variants_all
from tests.engine.rules.samples import SAMPLE_RULES
from tests.fakes import FakeClock

SUBJECTS = st.integers(0, 12)
FEATURES = st.sampled_from(["f0", "f1", "f2"])
VARIANTS = st.sampled_from(["A", "B", "C"])
GROUPS = st.sampled_from(["g0", "g1"])
PROPORTIONS = st.sampled_from([0.0, 0.1, 0.25, 0.33, 0.5, 0.8, 1.0])
TESTS = st.integers(0, 99).map(lambda number: f"t{number}")

OPERATIONS = st.one_of(
    st.tuples(st.just("increase_buckets"), st.integers(1, 3)),
    st.tuples(st.just("add_subject"), SUBJECTS, st.integers(1, 9)),
    st.tuples(st.just("add_subjects"), st.lists(SUBJECTS, max_size=4), st.integers(1, 9)),
    st.tuples(st.just("rm_subject"), SUBJECTS),
    st.tuples(st.just("set_subject_weight"), SUBJECTS, st.integers(1, 9)),
    st.tuples(st.just("add_feature"), FEATURES),
    st.tuples(st.just("add_variant"), VARIANTS, FEATURES, st.booleans()),
    st.tuples(st.just("add_disabling_variant"), FEATURES, st.booleans()),
    st.tuples(st.just("rm_variant"), VARIANTS, FEATURES),
    st.tuples(st.just("set_default_feature_variant"), FEATURES, VARIANTS),
    st.tuples(st.just("add_rollout"), VARIANTS, FEATURES),
    st.tuples(st.just("set_rollout_proportion"), FEATURES, PROPORTIONS),
    st.tuples(st.just("add_group"), GROUPS),
    st.tuples(st.just("rm_group"), GROUPS),
    st.tuples(st.just("add_subject_to_group"), SUBJECTS, GROUPS),
    st.tuples(st.just("rm_subject_from_group"), SUBJECTS, GROUPS),
    st.tuples(st.just("add_group_override"), GROUPS, FEATURES, VARIANTS),
    st.tuples(st.just("rm_group_override"), GROUPS, FEATURES),
    st.tuples(st.just("add_abtest"), st.integers(0, 99), FEATURES, VARIANTS, VARIANTS),
    st.tuples(st.just("add_abtest_now"), st.integers(0, 99), FEATURES, VARIANTS, VARIANTS),
    st.tuples(st.just("stop_abtest"), TESTS),
    st.tuples(st.just("rm_abtest"), TESTS),
    st.tuples(st.just("rm_rollout"), FEATURES),
    st.tuples(st.just("set_rollout"), FEATURES, VARIANTS, PROPORTIONS),
    st.tuples(st.just("rm_feature"), FEATURES),
    st.tuples(st.just("set_rollout_audience"), FEATURES, st.none() | GROUPS),
    st.tuples(st.just("set_group_rule"), GROUPS, st.sampled_from(SAMPLE_RULES)),
    st.tuples(st.just("rm_group_rule"), GROUPS),
    st.tuples(st.just("advance_clock"), st.integers(1, 30)),
)


async def _empty(store: AsyncFlaggery) -> None:
    async with store.database.engine.begin() as conn:
        for table in reversed(tables.metadata.sorted_tables):
            await conn.execute(delete(table))
        await conn.execute(
            insert(tables.state).values(id=1, revision=0, key_salt=secrets.token_hex(16))
        )


Operation = tuple[Any, ...]


async def _apply(store: AsyncFlaggery, clock: FakeClock, operation: Operation) -> None:
    name, *args = operation
    if name == "advance_clock":
        clock.advance(hours=args[0])
    elif name == "add_subjects":
        await store.add_subjects([(i, args[1]) for i in dict.fromkeys(args[0])])
    elif name in ("add_abtest", "add_abtest_now"):
        number, feature, control, experiment = args
        start = clock.now + timedelta(hours=1 + number % 5) if name == "add_abtest" else None
        end = clock.now + timedelta(hours=13)
        groups = {"control": {feature: control}, "experiment": {feature: experiment}}
        await store.add_abtest(f"t{number}", start, end, groups)
    else:
        await getattr(store, name)(*args)


async def _rollout(store: AsyncFlaggery, feature: str) -> RolloutRecord | None:
    try:
        return await store.get_rollout(feature)
    except errors.RolloutNotFound:
        return None


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=st.lists(OPERATIONS, min_size=1, max_size=25))
async def test_random_operations_keep_the_invariants(
    db_url: str, operations: list[Operation]
) -> None:
    clock = FakeClock()
    # A fresh store per example: its replica must not remember the previous example's revisions.
    async with AsyncFlaggery.from_db_url(db_url, clock=clock) as store:
        await _empty(store)
        await store.increase_buckets(2)
        for operation in operations:
            await _apply_checked(store, clock, operation)
        async with store.database.read() as conn:
            await check_invariants(conn, clock.now)
            expected = await naive_variants_all(conn, clock.now)
        for subject_id, flags in expected.items():
            assert await store.get_subject_variants(subject_id) == flags, subject_id
        scratch = build_snapshot(await load_state(store.database), clock.now)
    for subject_id, flags in expected.items():
        assert dict(scratch.variants(subject_id)) == flags


async def _apply_checked(store: AsyncFlaggery, clock: FakeClock, operation: Operation) -> None:
    """Apply one operation and check what it did to the revision and to rollouts."""
    revision = await store.revision()
    is_rollout_move = operation[0] in ("set_rollout_proportion", "set_rollout")
    before = await _rollout(store, operation[1]) if is_rollout_move else None
    try:
        await _apply(store, clock, operation)
    except errors.FlaggeryError:
        assert await store.revision() == revision, f"{operation} failed but wrote"
        return
    assert await store.revision() in (revision, revision + 1)
    if before is not None:
        after = await _rollout(store, operation[1])
        assert after is not None
        if after.proportion > before.proportion:
            assert set(before.buckets) <= set(after.buckets)
        elif after.proportion < before.proportion:
            assert set(after.buckets) <= set(before.buckets)
        if after.proportion != before.proportion:
            await _assert_accurate(store, after)


async def _assert_accurate(store: AsyncFlaggery, rollout: RolloutRecord) -> None:
    """A rollout just set lands within half the largest bucket weight of its target."""
    buckets = (await store.get_buckets()).buckets
    total = sum(bucket.weight for bucket in buckets)
    largest = max((bucket.weight for bucket in buckets), default=0)
    assert abs(rollout.effective_weight - rollout.proportion * total) <= largest / 2 + 1e-9
