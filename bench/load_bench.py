"""Full load at scale: how long an Evaluator takes to load N subjects from PostgreSQL, and
how much memory the process holding the snapshot uses.

    python bench/load_bench.py                   # 1,000,000 subjects (seeding takes ~30 s)
    python bench/load_bench.py --subjects 100000

Seeds a scratch database, then loads it in a fresh process (so the seeding's memory does not
count) and reports the load time and that process's resident memory. Targets (issue 3):
load <= 5 s, RSS <= 200 MB at 1,000,000 subjects.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import textwrap
import time

from report import print_measures
from seed import SERVER_URL, scratch_database, seed

LOADER = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from flaggery import Evaluator

    def rss_mib(field):
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field):
                    return int(line.split()[1]) / 1024

    async def main(url):
        started = time.perf_counter()
        async with Evaluator.from_db_url(url) as ev:
            seconds = time.perf_counter() - started
            ev.variants(1)
            print(json.dumps({
                "load_seconds": round(seconds, 3),
                "subjects_loaded": ev.snapshot.subject_count,
                "rss_mib": round(rss_mib("VmRSS:"), 1),
                "peak_rss_mib": round(rss_mib("VmHWM:"), 1),
            }))

    asyncio.run(main(sys.argv[1]))
    """
)


async def run(args: argparse.Namespace) -> dict[str, float]:
    async with scratch_database(args.url) as url:
        started = time.perf_counter()
        await seed(url, args.subjects)
        seed_seconds = time.perf_counter() - started
        results = []
        for _ in range(args.repeat):
            output = subprocess.run(
                [sys.executable, "-c", LOADER, url], capture_output=True, text=True, check=True
            ).stdout
            results.append(json.loads(output))
    best = min(results, key=lambda r: r["load_seconds"])
    return {"subjects": args.subjects, "seed_seconds": round(seed_seconds, 1), **best}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=SERVER_URL)
    parser.add_argument("--subjects", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="loads; the fastest is reported")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print_measures("load", result)


if __name__ == "__main__":
    main()
