"""What the live tests share: a seeded store, waiting for a condition, checks against rows."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from flaggery import errors
from flaggery.live.evaluator import Evaluator
from flaggery.store.repository import AsyncFlaggery
from tests.dbcheck import naive_variants_all


async def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def seed(store: AsyncFlaggery) -> None:
    await store.increase_buckets(4)
    await store.add_subjects([(i, i % 5 + 1) for i in range(50)])
    await store.add_feature("checkout")
    await store.add_variant("old", "checkout", make_default=True)
    await store.add_variant("new", "checkout")
    await store.add_rollout("new", "checkout")


async def assert_matches_database(ev: Evaluator, store: AsyncFlaggery, now: datetime) -> None:
    async with store.database.read() as conn:
        expected = await naive_variants_all(conn, now)
    assert {subject: dict(ev.variants(subject)) for subject in expected} == expected


def has_subject(ev: Evaluator, subject_id: int) -> bool:
    try:
        ev.variants(subject_id)
    except errors.SubjectNotFound:
        return False
    return True
