"""The benchmark dataset, shared by the HTTP benchmark and the Locust file.

10,000 subjects by default (ids 1..N, weights 1..10 from a fixed seed) in 100 buckets; 20 features
with variants A, B and __DISABLE__, half of them rolled out; 5 groups of 20 members with an
override each; one A/B test over 4 features that goes live 2 seconds after seeding.

    python bench/seed.py [--url postgresql://postgres@127.0.0.1:5432/postgres]

(re)creates the database ``flaggery_bench`` on that server and prints its URL. Benchmarks
that must not share it use ``scratch_database()``, which drops its database afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
from sqlalchemy.engine import make_url

from flaggery.store.repository import AsyncFlaggery
from flaggery.store.urls import libpq_dsn

__all__ = [
    "SUBJECTS",
    "configure",
    "create_database",
    "scratch_database",
    "seed",
    "subject_weights",
]

SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DATABASE = "flaggery_bench"
SUBJECTS = 10_000
BUCKETS = 100
FEATURES = 20
GROUPS = 5
GROUP_MEMBERS = 20
TEST_FEATURES = 4
TEST_STARTS_AFTER = timedelta(seconds=2)


def subject_weights(subjects: int = SUBJECTS, seed: int = 7) -> dict[int, int]:
    """Subject id -> weight, the same on every call (Locust picks subjects by weight)."""
    rng = random.Random(seed)
    return {subject_id: rng.randint(1, 10) for subject_id in range(1, subjects + 1)}


def feature_name(index: int) -> str:
    return f"feature_{index:02d}"


async def create_database(server_url: str = SERVER_URL, name: str = DATABASE) -> str:
    """Drop and create the database ``name``; return its URL."""
    connection = await asyncpg.connect(libpq_dsn(make_url(server_url)), timeout=5)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


@contextlib.asynccontextmanager
async def scratch_database(server_url: str = SERVER_URL) -> AsyncIterator[str]:
    """A new empty database for one run; dropped when the block ends."""
    name = f"flaggery_bench_{uuid.uuid4().hex[:8]}"
    url = await create_database(server_url, name)
    try:
        yield url
    finally:
        connection = await asyncpg.connect(libpq_dsn(make_url(server_url)), timeout=5)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()


async def seed(url: str, subjects: int = SUBJECTS) -> None:
    """Migrate the empty database at ``url`` and fill it with the dataset."""
    async with AsyncFlaggery.from_db_url(url) as store:
        await store.upgrade_db()
        await store.increase_buckets(BUCKETS)
        await store.add_subjects(sorted(subject_weights(subjects).items()))
        await configure(store, subjects)


async def configure(store: AsyncFlaggery, subjects: int) -> None:
    """Everything of the dataset but its subjects (ids 1..``subjects``, added already)."""
    rng = random.Random(11)
    for index in range(FEATURES):
        feature = feature_name(index)
        await store.add_feature(feature)
        await store.add_variant("A", feature)
        await store.add_variant("B", feature, make_default=index % 3 == 0)
        await store.add_disabling_variant(feature, make_default=index % 3 != 0)
        if index % 2 == 0:
            await store.add_rollout("A", feature)
            await store.set_rollout_proportion(feature, rng.choice([0.1, 0.25, 0.5, 0.9]))
    for index in range(GROUPS):
        group = f"group_{index}"
        await store.add_group(group)
        for subject_id in rng.sample(range(1, subjects + 1), GROUP_MEMBERS):
            await store.add_subject_to_group(subject_id, group)
        await store.add_group_override(group, feature_name(index), "B")
    start = datetime.now(UTC) + TEST_STARTS_AFTER
    tested = [feature_name(FEATURES - 1 - i) for i in range(TEST_FEATURES)]
    await store.add_abtest(
        "checkout_test",
        start,
        start + timedelta(days=1),
        {"control": dict.fromkeys(tested, "A"), "experiment": dict.fromkeys(tested, "B")},
        [0.5, 0.5],
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=SERVER_URL, help="a PostgreSQL server URL")
    args = parser.parse_args()
    url = await create_database(args.url)
    await seed(url)
    print(url)


if __name__ == "__main__":
    asyncio.run(main())
