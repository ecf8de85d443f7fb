"""How fast a write committed by another process shows up in an Evaluator (PostgreSQL).

    python bench/propagation_bench.py            # 100,000 subjects, 100 writes of each kind

A writer process commits subject writes (new subjects, weight changes) and rollout moves one
at a time, printing each revision and the wall-clock time right after its commit. This process
follows with an Evaluator (LISTEN/NOTIFY) and notes when each revision becomes visible.
Target (issue 3): p99 <= 50 ms for both kinds, with no full reload.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import textwrap
import time

from report import latency_measures, print_measures
from seed import SERVER_URL, scratch_database, seed

from flaggery import Evaluator

WRITER = textwrap.dedent(
    """
    import asyncio, sys, time
    from flaggery import AsyncFlaggery

    async def main(url, writes, first_id):
        async with AsyncFlaggery.from_db_url(url) as store:
            for n in range(writes):
                kind = "subject" if n % 2 == 0 else "rollout"
                if kind == "subject":
                    await store.add_subject(first_id + n, 1 + n % 9)
                else:
                    await store.set_rollout_proportion("feature_02", (n % 20) / 20 + 0.025)
                committed = time.time()
                print(kind, await store.revision(), committed, flush=True)
                await asyncio.sleep(0.02)  # one write at a time, as an admin would

    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
    """
)


async def measure(url: str, writes: int, first_id: int) -> tuple[dict[str, list[float]], int]:
    visible_at: dict[int, float] = {}
    async with Evaluator.from_db_url(url) as ev:
        full_reloads_before = ev.counts.full

        async def watch() -> None:
            seen = ev.revision
            while True:
                await asyncio.sleep(0.0005)
                if ev.revision != seen:
                    now = time.time()
                    for revision in range(seen + 1, ev.revision + 1):
                        visible_at[revision] = now
                    seen = ev.revision

        watcher = asyncio.create_task(watch())
        writer = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WRITER,
            url,
            str(writes),
            str(first_id),
            stdout=asyncio.subprocess.PIPE,
        )
        output, _ = await writer.communicate()
        await asyncio.sleep(0.5)
        watcher.cancel()
        extra_full_reloads = ev.counts.full - full_reloads_before
    latencies: dict[str, list[float]] = {"subject": [], "rollout": []}
    for line in output.decode().splitlines():
        kind, revision, committed = line.split()
        latencies[kind].append((visible_at[int(revision)] - float(committed)) * 1000)
    return latencies, extra_full_reloads


async def run(args: argparse.Namespace) -> dict[str, object]:
    async with scratch_database(args.url) as url:
        await seed(url, args.subjects)
        latencies, full_reloads = await measure(url, 2 * args.writes, args.subjects + 1)
    return {
        "subjects": args.subjects,
        "full_reloads": full_reloads,
        **latency_measures(latencies),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=SERVER_URL)
    parser.add_argument("--subjects", type=int, default=100_000)
    parser.add_argument("--writes", type=int, default=100, help="of each kind")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print_measures("propagation", result)


if __name__ == "__main__":
    main()
