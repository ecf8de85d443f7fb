"""Admin latency of allocation at scale: moving a rollout, creating an A/B test, adding buckets.

    python bench/allocation_bench.py                 # PostgreSQL on 127.0.0.1
    python bench/allocation_bench.py --subjects 20000 --buckets 200

100,000 subjects in 1,000 buckets, 20 rollouts and 5 A/B tests that have not ended. Measures
``set_rollout_proportion`` (moves between proportions), ``add_abtest`` and
``increase_buckets(100)``. Only calls that flaggery 0.2.1's API has, so the same script
measures an older checkout for comparison (``PYTHONPATH=/path/to/checkout``). Creates and
drops its own database. Prints a table and one JSON line.
Targets (issue 10): moves and test creation within today's admin latency; adding 100 buckets
with 20 live rollouts and 5 live tests < 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from report import print_measures
from seed import SERVER_URL, scratch_database

import flaggery
from flaggery.store.repository import AsyncFlaggery

ROLLOUTS = 20
TESTS = 5
PROPORTIONS = (0.05, 0.1, 0.25, 0.5, 0.3, 0.75, 0.2, 0.9, 0.4, 0.15)


async def setup(store: AsyncFlaggery, subjects: int, buckets: int) -> None:
    rng = random.Random(3)
    await store.upgrade_db()
    await store.increase_buckets(buckets)
    await store.add_subjects([(i, rng.randint(1, 50)) for i in range(subjects)])
    for index in range(ROLLOUTS + TESTS + 20):
        feature = f"f{index}"
        await store.add_feature(feature)
        await store.add_variant("off", feature, make_default=True)
        await store.add_variant("on", feature)
    for index in range(ROLLOUTS):
        await store.add_rollout("on", f"f{index}")
        await store.set_rollout_proportion(f"f{index}", PROPORTIONS[index % len(PROPORTIONS)])
    for index in range(TESTS):
        await add_test(store, f"live{index}", f"f{ROLLOUTS + index}")


async def add_test(store: AsyncFlaggery, name: str, feature: str) -> None:
    start = datetime.now(UTC) + timedelta(hours=1)
    groups = {"control": {feature: "off"}, "treatment": {feature: "on"}}
    await store.add_abtest(name, start, start + timedelta(days=7), groups)


async def timed(calls: list[Callable[[], Awaitable[object]]]) -> list[float]:
    """Milliseconds per call, in order."""
    timings = []
    for call in calls:
        started = time.perf_counter()
        await call()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def summary(prefix: str, timings: list[float]) -> dict[str, float]:
    ordered = sorted(timings)
    return {
        f"{prefix}_median_ms": round(statistics.median(ordered), 2),
        f"{prefix}_max_ms": round(ordered[-1], 2),
    }


async def run(url: str, subjects: int, buckets: int) -> dict[str, float]:
    async with AsyncFlaggery.from_db_url(url) as store:
        await setup(store, subjects, buckets)
        grow_ms = await timed([lambda: store.increase_buckets(100) for _ in range(10)])
        moves = [PROPORTIONS[(i * 3) % len(PROPORTIONS)] for i in range(30)]
        move_ms = await timed(
            [lambda p=p: store.set_rollout_proportion("f0", p) for p in moves]  # type: ignore[misc]
        )
        base = ROLLOUTS + TESTS
        create_ms = await timed(
            [lambda i=i: add_test(store, f"new{i}", f"f{base + i}") for i in range(20)]  # type: ignore[misc]
        )
    return {
        **summary("set_rollout_proportion", move_ms),
        **summary("add_abtest", create_ms),
        **summary("increase_buckets_100", grow_ms),
    }


async def main_async(args: argparse.Namespace) -> dict[str, float]:
    async with scratch_database(args.url) as scratch:
        return await run(scratch, args.subjects, args.buckets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=SERVER_URL)
    parser.add_argument("--subjects", type=int, default=100_000)
    parser.add_argument("--buckets", type=int, default=1_000)
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    code = flaggery.__file__ or "?"
    print_measures("allocation", {"code": code, "subjects": args.subjects, **result})


if __name__ == "__main__":
    main()
