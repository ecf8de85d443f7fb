"""Admin write speed at scale: bulk-adding subjects, then adding one subject at a time.

    python bench/store_bench.py                      # PostgreSQL on 127.0.0.1, 100,000 subjects
    python bench/store_bench.py --url sqlite:///bench.db --subjects 20000

Creates (and drops) its own database on PostgreSQL. Prints a table and one JSON line.
Targets (issue 2): add_subjects of 100,000 <= 10 s; add_subject at 100,000 median <= 5 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
import uuid
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from flaggery.store.repository import AsyncFlaggery
from flaggery.store.urls import is_postgres, libpq_dsn

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


async def run(url: str, subjects: int, singles: int, buckets: int) -> dict[str, float]:
    rng = random.Random(1)
    async with AsyncFlaggery.from_db_url(url) as store:
        await store.upgrade_db()
        await store.increase_buckets(buckets)
        started = time.perf_counter()
        await store.add_subjects([(i, rng.randint(1, 10)) for i in range(subjects)])
        bulk_seconds = time.perf_counter() - started
        weights = [b.weight for b in (await store.get_buckets()).buckets]
        timings = []
        for i in range(subjects, subjects + singles):
            started = time.perf_counter()
            await store.add_subject(i, rng.randint(1, 10))
            timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return {
        "subjects": subjects,
        "bulk_add_seconds": round(bulk_seconds, 3),
        "bucket_weight_spread": max(weights) - min(weights),
        "mean_bucket_weight": round(statistics.mean(weights), 1),
        "add_subject_median_ms": round(statistics.median(timings), 3),
        "add_subject_p95_ms": round(timings[int(len(timings) * 0.95) - 1], 3),
    }


async def with_scratch_database(url: str, args: argparse.Namespace) -> dict[str, float]:
    parsed = make_url(url)
    if not is_postgres(parsed):
        Path(parsed.database or "").unlink(missing_ok=True)
        return await run(url, args.subjects, args.singles, args.buckets)
    admin = await asyncpg.connect(libpq_dsn(parsed))
    name = f"flaggery_bench_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        scratch = parsed.set(database=name).render_as_string(hide_password=False)
        return await run(scratch, args.subjects, args.singles, args.buckets)
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--subjects", type=int, default=100_000)
    parser.add_argument("--singles", type=int, default=300)
    parser.add_argument("--buckets", type=int, default=100)
    args = parser.parse_args()
    result = asyncio.run(with_scratch_database(args.url, args))
    print(f"{'measure':<28}{'value':>14}")
    for key, value in result.items():
        print(f"{key:<28}{value:>14}")
    print(
        json.dumps(
            {"benchmark": "store", "database": make_url(args.url).get_backend_name(), **result}
        )
    )


if __name__ == "__main__":
    main()
