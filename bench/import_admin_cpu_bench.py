"""The admin process's CPU per import batch (issue 25, goal 3): what a REST import batch costs it.

    python bench/import_admin_cpu_bench.py                      # 1,000,000 subjects present
    python bench/import_admin_cpu_bench.py --present 5000000 --batches 6

In a scratch PostgreSQL database (dropped at the end) with 100 buckets and ``--present``
subjects, an `Evaluator` on the store's own database handle (as the admin server has) follows
``--batches`` calls of `add_subjects` of ``--batch-size`` new subjects. Each batch is timed in
CPU seconds of this process (``time.process_time``), from the call until the evaluator holds
the batch (by its own commit listener or, if that was skipped, its change feed), so the number
is what the admin process spends, whatever the machine's load does to the wall clock.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import print_measures
from seed import BUCKETS, SERVER_URL, scratch_database

from flaggery.live.evaluator import Evaluator
from flaggery.store.repository import AsyncFlaggery

WEIGHT_SEED = 7
CATCH_UP_POLL_SECONDS = 0.005


async def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(WEIGHT_SEED)
    load_start = os.getloadavg()
    async with scratch_database(args.url) as url:
        store = AsyncFlaggery.from_db_url(url)
        try:
            await store.upgrade_db()
            await store.increase_buckets(BUCKETS)
            present = [(i + 1, rng.randint(1, 10)) for i in range(args.present)]
            await store.add_subjects(present)
            del present
            seconds = await timed_batches(store, args, rng)
        finally:
            await store.close()
    return {
        "load_average_start": " ".join(f"{v:.2f}" for v in load_start),
        "present": args.present,
        "batch_size": args.batch_size,
        "cpu_s": [round(s, 3) for s in seconds],
        "median_cpu_s": round(statistics.median(seconds), 3),
        "cpu_us_per_subject": round(statistics.median(seconds) / args.batch_size * 1e6, 2),
        "load_average_end": " ".join(f"{v:.2f}" for v in os.getloadavg()),
    }


async def timed_batches(
    store: AsyncFlaggery, args: argparse.Namespace, rng: random.Random
) -> list[float]:
    seconds: list[float] = []
    async with Evaluator(store.database) as evaluator:
        last = args.present
        for _ in range(args.batches):
            pairs = [(last + i + 1, rng.randint(1, 10)) for i in range(args.batch_size)]
            last += args.batch_size
            started = time.process_time()
            await store.add_subjects(pairs)
            while evaluator.revision < await store.revision():
                await asyncio.sleep(CATCH_UP_POLL_SECONDS)
            seconds.append(time.process_time() - started)
        evaluator.variants(last)  # raises SubjectNotFound if the last batch is missing
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=SERVER_URL, help="a PostgreSQL server URL")
    parser.add_argument("--present", type=int, default=1_000_000)
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=50_000)
    print_measures("import_admin_cpu", asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
