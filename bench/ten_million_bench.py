"""Ten million subjects per replica (issue 14, goal 1), end to end on PostgreSQL.

    python bench/ten_million_bench.py                      # 10,000,000 subjects, with the edge
    python bench/ten_million_bench.py --subjects 1000000 --no-edge

In a scratch database (dropped at the end): times one `add_subjects` of N subjects (ids 1..N,
weights 1..10 from a fixed seed, 100 buckets), checks every placement against an independent
one-by-one simulation and the stored bucket weights against it, and reads the size of the
change-log row; adds the usual features, rollouts, groups and A/B test (bench/seed.py). Then,
in fresh processes (so this one's memory does not count): an `Evaluator` from the database
(time to ready, RSS when ready and at peak) and `ev.variants` against a bare dict lookup for
random ids, at N and, in the same process, at 10,000 subjects (bench/engine_bench.py's
measure); and, unless --no-edge, an edge (`Evaluator.from_upstream`) cold start from a
read-only server holding the N subjects. Targets: add <= 60 s; ready <= 5 s in <= 200 MB;
the variants ratio as at 10,000; edge ready <= 5 s. Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import json
import random
import subprocess
import sys
import time
from array import array
from collections.abc import Iterator
from datetime import UTC, datetime
from operator import eq
from typing import Any

from edge_propagation_bench import replica_server
from engine_bench import LOOKUPS, build_state, calls_per_second, rss_mib
from report import print_measures
from seed import BUCKETS, SERVER_URL, configure, scratch_database
from sqlalchemy import select

from flaggery import Evaluator
from flaggery.engine import build_snapshot
from flaggery.engine.snapshot import Snapshot
from flaggery.store import tables as t
from flaggery.store.repository import AsyncFlaggery


def one_by_one(buckets: int, weights: array[int]) -> tuple[Iterator[int], list[tuple[int, int]]]:
    """Placement by the rule itself, written independently of flaggery's heap: each subject to
    the bucket of lowest (weight, id). Returns the placements (lazily) and the final heap."""
    heap = [(0, bucket) for bucket in range(1, buckets + 1)]

    def placements() -> Iterator[int]:
        for weight in weights:
            bucket_weight, bucket = heap[0]
            heapq.heapreplace(heap, (bucket_weight + weight, bucket))
            yield bucket

    return placements(), heap


async def add(url: str, subjects: int) -> dict[str, Any]:
    weights = array("q", (random.Random(7).randint(1, 10) for _ in range(subjects)))
    async with AsyncFlaggery.from_db_url(url) as store:
        await store.upgrade_db()
        await store.increase_buckets(BUCKETS)
        pairs = list(zip(range(1, subjects + 1), weights, strict=True))
        started = time.perf_counter()
        placed = await store.add_subjects(pairs)
        seconds = time.perf_counter() - started
        del pairs
        async with store.database.read() as conn:
            log = t.change_log.c
            query = select(log.payload).order_by(log.revision.desc()).limit(1)
            payload = (await conn.execute(query)).scalar_one()
        stored = {b.id: b.weight for b in (await store.get_buckets()).buckets}
        await configure(store, subjects)
    expected, heap = one_by_one(BUCKETS, weights)
    same = len(placed) == subjects and all(map(eq, expected, placed))
    return {
        "add_subjects_s": round(seconds, 2),
        "placed_as_one_by_one": same and stored == {bucket: w for w, bucket in heap},
        "bucket_weight_spread": max(stored.values()) - min(stored.values()),
        "mean_bucket_weight": round(sum(stored.values()) / len(stored)),
        "change_log_row_bytes": len(payload),
    }


def variants_vs_dict(snapshot: Snapshot, ids: list[int]) -> float:
    plain = {subject_id: snapshot.variants(subject_id) for subject_id in set(ids)}
    return calls_per_second(snapshot.variants, ids, 7) / calls_per_second(plain.__getitem__, ids, 7)


async def child(kind: str, url: str, subjects: int) -> dict[str, float]:
    """Run in a fresh process: ready an Evaluator (from the database or an upstream)."""
    before = rss_mib()
    ev = Evaluator.from_db_url(url) if kind == "db" else Evaluator.from_upstream(url)
    started = time.perf_counter()
    await ev.start()
    seconds = time.perf_counter() - started
    # The event loop's handle that resumed this task still holds what the last awaited future
    # returned (an edge's decoded State) until the loop's next turn, as in any serving process.
    await asyncio.sleep(0)
    result = {"ready_s": round(seconds, 2), "rss_before_mib": round(before, 1)}
    result["rss_mib"] = round(rss_mib(), 1)
    result["peak_rss_mib"] = round(_peak_rss_mib(), 1)
    if ev.snapshot.subject_count != subjects:
        raise RuntimeError(f"{ev.snapshot.subject_count} subjects loaded, not {subjects}")
    if kind == "db":
        rng = random.Random(3)
        result["variants_vs_dict"] = round(
            variants_vs_dict(ev.snapshot, [rng.randint(1, subjects) for _ in range(LOOKUPS)]), 3
        )
        small = build_snapshot(build_state(10_000, rng), datetime.now(UTC))
        result["variants_vs_dict_at_10k"] = round(
            variants_vs_dict(small, [rng.randrange(10_000) for _ in range(LOOKUPS)]), 3
        )
    await ev.stop()
    return result


def _peak_rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("VmHWM not found in /proc/self/status")


def in_fresh_process(kind: str, url: str, subjects: int) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", kind, url, "--subjects", str(subjects)]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result: dict[str, float] = json.loads(output.splitlines()[-1])
    return result


async def run(args: argparse.Namespace) -> dict[str, Any]:
    async with scratch_database(args.url) as url:
        result: dict[str, Any] = {"subjects": args.subjects, **await add(url, args.subjects)}
        loaded = in_fresh_process("db", url, args.subjects)
        result.update({f"evaluator_{key}": value for key, value in loaded.items()})
        if args.edge:
            with replica_server(url) as upstream:
                edge = in_fresh_process("edge", upstream, args.subjects)
            result.update({f"edge_{key}": value for key, value in edge.items()})
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=SERVER_URL)
    parser.add_argument("--subjects", type=int, default=10_000_000)
    parser.add_argument("--no-edge", dest="edge", action="store_false")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, url = args.child
        print(json.dumps(asyncio.run(child(kind, url, args.subjects))))
        return
    print_measures("ten_million", asyncio.run(run(args)))


if __name__ == "__main__":
    main()
