"""How long a serving process's event loop is held while snapshots swap, and by the collector.

    python bench/swap_stall_bench.py [--subjects 100000] [--changes-per-second 50] [--duration 10]
    PYTHONPATH=<a checkout of older code> python bench/swap_stall_bench.py --no-freeze

Seeds the benchmark dataset (bench/seed.py) into a scratch PostgreSQL database (dropped at the
end), starts an admin server, and runs here, in this process, the app a read-only worker runs
(``create_app``, its lifespan: the first snapshot, LISTEN/NOTIFY). While bench/change_writer.py
(in a child process) writes ``--changes-per-second`` changes of every kind, a task here yields
to the loop over and over and notes the *CPU time of this thread* between two of its turns:
the longest stretch the loop spent on something else (a refresh, a swap, a collection) before
it could turn to anything else, such as a request. CPU time, not wall time, so that other
processes on a shared machine do not count. Also: every cyclic-collector pause (CPU time, by
generation), and a full collection timed with the startup objects frozen (`create_app`'s
``freeze_gc``) and not. ``--no-freeze`` builds the app without ``freeze_gc`` (older code has
no such option). Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from change_writer import ChangeWriter
from fixed_rate import percentile
from http_bench import flaggery_command, free_port, server
from report import print_measures
from seed import scratch_database, seed

from flaggery.http import create_app
from flaggery.settings import Settings

FULL_COLLECTIONS = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--subjects", type=int, default=100_000)
    parser.add_argument("--changes-per-second", type=float, default=50.0)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of writes")
    parser.add_argument("--no-freeze", action="store_true", help="create_app without freeze_gc")
    args = parser.parse_args()
    print_measures("swap_stall", asyncio.run(measure(args)))


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    async with scratch_database(args.postgres_url) as db_url:
        print(f"seeding {args.subjects:,} subjects into {make_url(db_url).database} ...")
        await seed(db_url, args.subjects)
        port = free_port()
        command = [*flaggery_command(port, 1), "--admin"]
        probe = f"http://127.0.0.1:{port}/readyz"
        with server(command, {"FLAGGERY_DB_URL": db_url}, probe):
            settings = Settings(db_url=db_url, admin_mode=False)
            app = create_app(settings) if args.no_freeze else create_app(settings, freeze_gc=True)
            async with app.router.lifespan_context(app):
                evaluator = app.state.services.evaluator
                collections = full_collection_ms()
                swaps_before = evaluator.counts.incremental
                stalls, pauses, acknowledged = await watch(f"http://127.0.0.1:{port}", args)
                swaps = evaluator.counts.incremental - swaps_before
                views = evaluator.snapshot.view_count
                frozen = gc.get_freeze_count()
    return {
        "subjects": args.subjects,
        "views": views,
        "frozen_objects": frozen,
        "writes_acknowledged": acknowledged,
        "swaps": swaps,
        "turns": len(stalls),
        **summary("loop_held_ms", stalls),
        **{f"loop_held_over_{limit}_ms": sum(s > limit for s in stalls) for limit in (0.5, 1, 2)},
        **{f"gc_gen{gen}_{key}": value for gen in range(3) for key, value in pauses[gen].items()},
        **collections,
        "load_average": round(os.getloadavg()[0], 2),
    }


def full_collection_ms() -> dict[str, float]:
    """A full collection's CPU time (median of FULL_COLLECTIONS) as the app left the
    collector (frozen with freeze_gc), and with everything unfrozen; left as found."""
    frozen = gc.get_freeze_count()
    as_left = _median_collection()
    gc.unfreeze()
    unfrozen = _median_collection()
    tracked = len(gc.get_objects())
    if frozen:
        gc.freeze()
    return {
        "full_collection_ms": as_left,
        "full_collection_unfrozen_ms": unfrozen,
        "objects_tracked_unfrozen": tracked,
    }


def _median_collection() -> float:
    times = []
    for _ in range(FULL_COLLECTIONS):
        started = time.thread_time()
        gc.collect()
        times.append(1000 * (time.thread_time() - started))
    return round(sorted(times)[FULL_COLLECTIONS // 2], 3)


async def watch(
    admin_url: str, args: argparse.Namespace
) -> tuple[list[float], dict[int, dict[str, float]], int]:
    """The loop's stretches away from a task that only yields (ms, sorted), the collector's
    pauses by generation, and the writes acknowledged, while the writer writes."""
    pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
    started = [0.0]

    def on_collection(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.thread_time()
        else:
            pauses[info["generation"]].append(1000 * (time.thread_time() - started[0]))

    stalls: list[float] = []
    writing = asyncio.create_task(asyncio.to_thread(write, admin_url, args))
    gc.callbacks.append(on_collection)
    try:
        last = time.thread_time()
        while not writing.done():
            await asyncio.sleep(0)
            now = time.thread_time()
            stalls.append(1000 * (now - last))
            last = now
    finally:
        gc.callbacks.remove(on_collection)
    stalls.sort()
    by_generation = {gen: summary("pause_ms", sorted(times)) for gen, times in pauses.items()}
    return stalls, by_generation, writing.result()


def write(admin_url: str, args: argparse.Namespace) -> int:
    """The writer, in a child process so that its own work is not on this loop."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return int(pool.apply(_write, (admin_url, args.subjects, args.changes_per_second,
                                        args.duration)))  # fmt: skip


def _write(admin_url: str, subjects: int, rate: float, duration: float) -> int:
    writer = ChangeWriter(admin_url, subjects, rate)
    changes = asyncio.run(writer.run(duration))
    return sum(change.acknowledged for change in changes)


def summary(name: str, ordered: list[float]) -> dict[str, float]:
    if not ordered:
        return {f"{name}_count": 0}
    return {
        f"{name}_count": len(ordered),
        f"{name}_p50": round(percentile(ordered, 0.5), 3),
        f"{name}_p99": round(percentile(ordered, 0.99), 3),
        f"{name}_p99.9": round(percentile(ordered, 0.999), 3),
        f"{name}_max": round(ordered[-1], 3),
    }


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
