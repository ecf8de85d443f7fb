"""Admin write speed at scale: bulk-adding subjects, then adding one subject at a time.

    python bench/store_bench.py                      # PostgreSQL on 127.0.0.1, 100,000 subjects
    python bench/store_bench.py --url sqlite:///bench.db --subjects 20000

Creates (and drops) its own database on PostgreSQL. Prints a table and one JSON line.
Targets (issue 2): add_subjects of 100,000 <= 10 s; add_subject at 100,000 median <= 5 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from pathlib import Path

from report import print_measures
from seed import SERVER_URL, scratch_database
from sqlalchemy.engine import make_url

from flaggery.store.repository import AsyncFlaggery
from flaggery.store.urls import is_postgres


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
    async with scratch_database(url) as scratch:
        return await run(scratch, args.subjects, args.singles, args.buckets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=SERVER_URL)
    parser.add_argument("--subjects", type=int, default=100_000)
    parser.add_argument("--singles", type=int, default=300)
    parser.add_argument("--buckets", type=int, default=100)
    args = parser.parse_args()
    result = asyncio.run(with_scratch_database(args.url, args))
    print_measures("store", {"database": make_url(args.url).get_backend_name(), **result})


if __name__ == "__main__":
    main()
