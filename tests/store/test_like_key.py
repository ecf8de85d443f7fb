"""Sign-in keeps variants (issue 19): add_subject(..., like_key=KEY) places the new subject where
KEY hashes to, within the stated balance tolerance, on SQLite and PostgreSQL, through the async
API, the sync facade and REST."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from flaggery.core import Flaggery
from flaggery.engine.allocation import like_key_bucket
from flaggery.errors import (
    InvalidTargetingKey,
    NoBuckets,
    SubjectExists,
    SubjectNotFound,
    ValidationError,
)
from flaggery.store.repository import AsyncFlaggery
from tests.fakes import FakeClock
from tests.http.helpers import fails, ok


async def _seed(store: AsyncFlaggery, clock: FakeClock) -> None:
    """8 buckets of weight 100 (tolerance: 5), a 50% rollout, a live 50/50 test."""
    await store.increase_buckets(8)
    await store.add_subjects([(i, 1) for i in range(800)])
    for feature in ("checkout", "search"):
        await store.add_feature(feature)
        await store.add_variant("A", feature, make_default=True)
        await store.add_variant("B", feature)
    await store.add_rollout("B", "checkout")
    await store.set_rollout_proportion("checkout", 0.5)
    start = clock.now + timedelta(minutes=1)
    groups = {"control": {"search": "A"}, "treatment": {"search": "B"}}
    await store.add_abtest("t", start, start + timedelta(days=7), groups)
    clock.advance(minutes=2)


async def test_a_visitor_who_signs_in_keeps_every_variant(
    store: AsyncFlaggery, clock: FakeClock
) -> None:
    await _seed(store, clock)
    for n in range(4):  # 4 subjects of weight 1 can unbalance no bucket beyond 5
        visitor = f"visitor-{n}"
        before = await store.evaluate(visitor)
        placed = await store.add_subject(1000 + n, 1, like_key=visitor)
        assert placed.kept and placed.reason is None
        assert placed.bucket == placed.key_bucket == before.view.bucket
        after = await store.evaluate(str(1000 + n))
        assert (after.subject, dict(after.flags)) == (1000 + n, dict(before.flags))


async def test_a_bucket_beyond_the_tolerance_falls_back_to_the_lightest(
    store: AsyncFlaggery,
) -> None:
    await store.increase_buckets(2)
    assert await store.add_subject(1, 100) == 1
    keys = [f"visitor-{n}" for n in range(40)]
    buckets = {key: (await store.evaluate(key)).view.bucket for key in keys}
    visitor = next(key for key, bucket in buckets.items() if bucket == 1)
    placed = await store.add_subject(2, 1, like_key=visitor)
    assert (placed.bucket, placed.key_bucket, placed.kept) == (2, 1, False)
    assert placed.reason is not None and "tolerance" in placed.reason
    assert (await store.get_subject(2)).bucket_id == 2


async def test_bad_keys_and_no_buckets_write_nothing(store: AsyncFlaggery) -> None:
    with pytest.raises(NoBuckets):
        await store.add_subject(1, 1, like_key="visitor")
    await store.increase_buckets(2)
    revision = await store.revision()
    for key in ("", "x" * 257, "a\x00b"):
        with pytest.raises(InvalidTargetingKey):
            await store.add_subject(1, 1, like_key=key)
    assert await store.revision() == revision


def test_the_tolerance_is_the_larger_of_the_weight_and_5_percent_of_the_mean() -> None:
    # Mean 100: tolerance 5 for a subject of weight 1, 8 for one of weight 8.
    weights = {1: 95, 2: 100, 3: 105}
    assert like_key_bucket(weights, 2, 1) == (2, None)  # 5 above the lightest: within
    assert like_key_bucket(weights, 3, 10) == (3, None)  # 10 above, tolerance 10: within
    bucket, reason = like_key_bucket(weights, 3, 1)
    assert bucket == 1 and reason is not None and "tolerance of 5" in reason


def test_the_sync_facade_takes_like_key(db_url: str) -> None:
    with Flaggery.from_db_url(db_url) as flaggery:
        flaggery.increase_buckets(4)
        placed = flaggery.add_subject(7, 1, like_key="device-7")
        assert placed.kept and flaggery.evaluate("7").view.bucket == placed.key_bucket
        assert flaggery.evaluate("device-7").view.bucket == placed.bucket
        assert flaggery.add_subject(8) in (1, 2, 3, 4)  # without like_key: the bucket id


async def test_rest_like_key(db_url: str, clock: FakeClock) -> None:
    from flaggery.http import create_app
    from flaggery.settings import Settings

    app = create_app(Settings(db_url=db_url, admin_mode=True, db_auto_upgrade=False), clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            ok(await client.put("/v1/buckets", params={"amount": 4}))
            visitor = "ana@example.com"
            bucket = ok(await client.get("/v1/keys/ana%40example.com/explain"))["bucket"]
            added = ok(
                await client.post("/v1/subjects/5", params={"weight": 1, "like_key": visitor}), 201
            )
            assert added == {
                "subject_id": 5,
                "weight": 1,
                "bucket_id": bucket,
                "key_bucket": bucket,
            }
            plain = ok(await client.post("/v1/subjects/6", params={"weight": 1}), 201)
            assert set(plain) == {"subject_id", "weight", "bucket_id"}  # 0.2.1's shape
            refused = await client.post("/v1/subjects/7", params={"weight": 1, "like_key": ""})
            fails(refused, 400, "InvalidTargetingKey")


async def test_a_returning_subject_keeps_its_own_bucket_over_the_key(store: AsyncFlaggery) -> None:
    await store.increase_buckets(4)
    first = await store.add_subject(5, 1)
    await store.rm_subject(5)
    keys = [f"visitor-{n}" for n in range(40)]
    elsewhere = [key for key in keys if (await store.evaluate(key)).view.bucket != first]
    placed = await store.add_subject(5, 1, like_key=elsewhere[0])
    assert (placed.bucket, placed.kept) == (first, False)
    assert placed.reason is not None and "registered before" in placed.reason


async def test_many_sign_ins_in_one_write_place_as_one_by_one_adds(store: AsyncFlaggery) -> None:
    """add_subjects_like_keys: one revision, each placed exactly as add_subject(like_key=)
    one after another places it from the same bucket weights."""
    await store.increase_buckets(3)
    await store.add_subject(1, 60)  # bucket 1 heavy: keys hashing there fall back
    rows = [(10 + n, 1 + n % 3, f"visitor-{n}" if n % 4 else None) for n in range(12)]
    before = await store.revision()
    placed = await store.add_subjects_like_keys(rows)
    assert await store.revision() == before + 1
    assert [c.operation for c in (await store.history(limit=1)).changes] == ["add_subjects"]
    for sid, _, _ in rows:  # back to the same bucket weights, nothing remembered
        await store.rm_subject(sid, forget=True)
    one_by_one = [
        await store.add_subject(sid, weight)
        if key is None
        else await store.add_subject(sid, weight, like_key=key)
        for sid, weight, key in rows
    ]
    assert placed == one_by_one
    fell_back = [p for p in placed if not isinstance(p, int) and not p.kept]
    assert fell_back and all(p.reason and "tolerance" in p.reason for p in fell_back)
    assert any(not isinstance(p, int) and p.kept for p in placed)
    with pytest.raises(SubjectExists, match="Subject 10"):
        await store.add_subjects_like_keys([(99, 1, "k"), (10, 1, "k")])
    with pytest.raises(ValidationError, match="more than once"):
        await store.add_subjects_like_keys([(98, 1, "k"), (98, 1, None)])
    with pytest.raises(InvalidTargetingKey):
        await store.add_subjects_like_keys([(98, 1, "")])
    with pytest.raises(SubjectNotFound):
        await store.get_subject(99)  # nothing of a refused batch
