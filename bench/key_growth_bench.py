"""Hashed keys through growth: how many keep every variant when the buckets are doubled.

    python bench/key_growth_bench.py [--keys 100000] [--buckets 100] [--subjects 10000]

On a fresh SQLite database (the store's own allocation rules): ``--buckets`` buckets,
``--subjects`` subjects of weight 1 to 10, five rollouts (10, 25, 50, 75 and 90 %) on five
features and a live 50/50 A/B test on a sixth. Evaluates ``--keys`` random UUID keys, adds as
many buckets again (one ``increase_buckets`` call: a split, docs/allocation.md), evaluates
them again, and counts the keys whose variant of any feature changed, split by whether the key
moved to a new bucket (half of them move, each into a child of its bucket that holds the same
rollouts and test group; a key that stays keeps its bucket). The issue's goal is at most 1 %
of keys changing (46.8 % before the split, with jump hash alone); peers re-randomise. Prints a
table and one JSON line, with the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flaggery.store.repository import AsyncFlaggery

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from report import print_measures  # noqa: E402

ROLLOUTS = (0.1, 0.25, 0.5, 0.75, 0.9)


async def _seed(store: AsyncFlaggery, buckets: int, subjects: int, rng: random.Random) -> None:
    await store.increase_buckets(buckets)
    await store.add_subjects([(i, rng.randint(1, 10)) for i in range(subjects)])
    for n, proportion in enumerate(ROLLOUTS):
        feature = f"rollout-{n}"
        await store.add_feature(feature)
        await store.add_variant("off", feature, make_default=True)
        await store.add_variant("on", feature)
        await store.add_rollout("on", feature)
        await store.set_rollout_proportion(feature, proportion)
    await store.add_feature("tested")
    await store.add_variant("A", "tested", make_default=True)
    await store.add_variant("B", "tested")
    start = datetime.now(UTC) + timedelta(seconds=1)
    groups = {"control": {"tested": "A"}, "treatment": {"tested": "B"}}
    await store.add_abtest("live-test", start, start + timedelta(days=30), groups)
    await asyncio.sleep(1.2)  # the test is live from here on


async def run(keys: int, buckets: int, subjects: int) -> dict[str, object]:
    rng = random.Random(19)
    visitors = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(keys)]
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{Path(directory) / 'growth.db'}"
        async with AsyncFlaggery.from_db_url(url) as store:
            await store.upgrade_db()
            await _seed(store, buckets, subjects, rng)
            before = [await store.evaluate(key) for key in visitors]
            started = time.perf_counter()
            await store.increase_buckets(buckets)
            grown_seconds = time.perf_counter() - started
            after = [await store.evaluate(key) for key in visitors]
    moved = [a.view.bucket != b.view.bucket for a, b in zip(after, before, strict=True)]
    changed = [a.flags != b.flags for a, b in zip(after, before, strict=True)]
    changed_moved = sum(c and m for c, m in zip(changed, moved, strict=True))
    return {
        "keys": keys,
        "buckets_before": buckets,
        "buckets_after": 2 * buckets,
        "moved_pct": round(100 * sum(moved) / keys, 2),
        "changed_any_variant_pct": round(100 * sum(changed) / keys, 2),
        "changed_among_moved_pct": round(100 * changed_moved / max(sum(moved), 1), 2),
        "changed_among_stayed": sum(changed) - changed_moved,
        "increase_buckets_s": round(grown_seconds, 3),
        "load_average": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--buckets", type=int, default=100)
    parser.add_argument("--subjects", type=int, default=10_000)
    args = parser.parse_args()
    print_measures("key_growth", asyncio.run(run(args.keys, args.buckets, args.subjects)))


if __name__ == "__main__":
    main()
