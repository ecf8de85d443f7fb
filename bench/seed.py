"""The benchmark dataset, shared by the HTTP benchmarks and the Locust file.

10,000 subjects by default (ids 1..N, weights 1..10 from a fixed seed) in 100 buckets; 20 features
with variants A, B and __DISABLE__, half of them rolled out; 5 groups of 20 members with an
override each; one A/B test over 4 features that goes live 2 seconds after seeding.

    python bench/seed.py [--url postgresql://postgres@127.0.0.1:5432/postgres]
                         [--database flaggery_bench] [--replace-database]

creates the database (``flaggery_bench`` by default) on that server, seeds it, keeps it and
prints its URL: for Locust against servers you run yourself. A database of that name that
exists already is left alone (the command stops and says so) unless ``--replace-database``
says to drop it. Benchmarks use ``scratch_database()``: a database they create, under a
random name or the one given, dropped when they end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import asyncpg
from sqlalchemy.engine import make_url

from flaggery.store.repository import AsyncFlaggery
from flaggery.store.urls import libpq_dsn

__all__ = [
    "SUBJECTS",
    "add_database_options",
    "configure",
    "create_database",
    "scratch_database",
    "seed",
    "seeded_database",
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


async def create_database(
    server_url: str = SERVER_URL, name: str = DATABASE, *, replace: bool = False
) -> str:
    """Create the empty database ``name`` on the server at ``server_url``; its URL. If one of
    that name exists it is dropped and created again only if ``replace``; otherwise this exits
    saying so, so a benchmark never drops a database it did not create unless told to."""
    connection = await asyncpg.connect(libpq_dsn(make_url(server_url)), timeout=5)
    try:
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        except asyncpg.DuplicateDatabaseError:
            if not replace:
                raise SystemExit(
                    f"A database named {name!r} exists already on {_safe(server_url)}: "
                    "choose another name (--database) or drop and recreate it "
                    "(--replace-database)."
                ) from None
            await connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


@contextlib.asynccontextmanager
async def scratch_database(
    server_url: str = SERVER_URL, name: str | None = None, *, replace: bool = False
) -> AsyncIterator[str]:
    """A new empty database for one run, ``name`` or a random one (see `create_database`);
    dropped when the block ends."""
    name = name or f"flaggery_bench_{uuid.uuid4().hex[:8]}"
    url = await create_database(server_url, name, replace=replace)
    try:
        yield url
    finally:
        await _drop_database(server_url, name)


@contextlib.contextmanager
def seeded_database(
    server_url: str = SERVER_URL, name: str | None = None, *, replace: bool = False
) -> Iterator[str]:
    """`scratch_database` seeded with the dataset, for benchmarks that drive their servers from
    synchronous code; dropped when the block ends."""
    name = name or f"flaggery_bench_{uuid.uuid4().hex[:8]}"
    url = asyncio.run(create_database(server_url, name, replace=replace))
    try:
        asyncio.run(seed(url))
        yield url
    finally:
        asyncio.run(_drop_database(server_url, name))


async def _drop_database(server_url: str, name: str) -> None:
    connection = await asyncpg.connect(libpq_dsn(make_url(server_url)), timeout=5)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def add_database_options(parser: argparse.ArgumentParser, default: str | None) -> None:
    """``--database`` (``default``; None: a random name) and ``--replace-database``."""
    where = f"default {default}" if default else "default: a new one under a random name"
    parser.add_argument("--database", default=default, help=f"database to create ({where})")
    parser.add_argument(
        "--replace-database",
        action="store_true",
        help="drop and recreate the database if it exists (otherwise: stop)",
    )


def _safe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


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
    add_database_options(parser, default=DATABASE)
    args = parser.parse_args()
    url = await create_database(args.url, args.database, replace=args.replace_database)
    await seed(url)
    print(url)


if __name__ == "__main__":
    asyncio.run(main())
