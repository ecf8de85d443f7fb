"""A throwaway PostgreSQL database for one benchmark run, seeded through the admin API."""

from __future__ import annotations

import contextlib
import random
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
from sqlalchemy.engine import make_url

from flaggery.store.database import utc_now
from flaggery.store.repository import AsyncFlaggery
from flaggery.store.urls import libpq_dsn

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextlib.asynccontextmanager
async def scratch_database(url: str = DEFAULT_URL) -> AsyncIterator[str]:
    """Create an empty database next to ``url``'s, yield its URL, drop it afterwards."""
    parsed = make_url(url)
    admin = await asyncpg.connect(libpq_dsn(parsed))
    name = f"flaggery_bench_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield parsed.set(database=name).render_as_string(hide_password=False)
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def seed(url: str, *, subjects: int, buckets: int = 100, features: int = 20) -> None:
    """The benchmark dataset: weighted subjects, features with rollouts and defaults, 5 groups
    with members and overrides, and an A/B test that is live now.

    A test must start in the future when it is created, so the seeding store runs on a clock
    ten minutes behind: the test it creates started a minute ago by the real clock.
    """
    async with AsyncFlaggery.from_db_url(
        url, clock=lambda: utc_now() - timedelta(minutes=10)
    ) as store:
        await _seed(store, subjects=subjects, buckets=buckets, features=features, groups=5)


async def _seed(
    store: AsyncFlaggery, *, subjects: int, buckets: int, features: int, groups: int
) -> None:
    rng = random.Random(42)
    await store.upgrade_db()
    await store.increase_buckets(buckets)
    await store.add_subjects([(i, rng.randint(1, 10)) for i in range(subjects)])
    for f in range(features):
        name = f"feature-{f}"
        await store.add_feature(name)
        for variant in ("A", "B", "C"):
            await store.add_variant(variant, name)
        await store.add_disabling_variant(name, make_default=f % 2 == 0)
        await store.add_rollout("B", name)
        await store.set_rollout_proportion(name, rng.choice([0.1, 0.25, 0.5, 0.9]))
    for g in range(groups):
        group = f"group-{g}"
        await store.add_group(group)
        await store.add_group_override(group, f"feature-{g}", "C")
        for subject_id in rng.sample(range(subjects), min(20, subjects)):
            await store.add_subject_to_group(subject_id, group)
    start = utc_now() - timedelta(minutes=1)
    await store.add_abtest(
        "bench-test",
        start,
        start + timedelta(days=30),
        {"control": {"feature-19": "A"}, "experiment": {"feature-19": "B"}},
        [0.5, 0.5],
    )
