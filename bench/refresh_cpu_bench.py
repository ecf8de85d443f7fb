"""CPU a serving replica spends per applied change, by kind of write (issue 25, goal 5).

    python bench/refresh_cpu_bench.py [--subjects 100000] [--rounds 40]
    PYTHONPATH=<a checkout of older code> python bench/refresh_cpu_bench.py   # the same, older

Seeds the benchmark dataset (bench/seed.py) into a scratch PostgreSQL database (dropped at the
end). In this one process a store writes through its own pool, and a `Replica` on a second pool
(as a read-only worker has) catches up after each write with ``refresh()``: the change-log read
and the apply, the work NOTIFY starts in every serving process. Two such replicas, alternating
which goes first: ``pool`` reads the log through its SQLAlchemy pool (how every refresh read
it before), ``listen`` on a plain asyncpg connection, as the PostgreSQL feed now does on its
LISTEN connection (flaggery.store.log_tail). Each refresh's CPU time
(``time.process_time``, so other processes on a loaded machine do not count) is noted by kind:
the writes of bench/change_writer.py (a weight, a rollout moved, a group join or leave, an
override added or removed, an A/B test started, stopped, deleted; one write a refresh),
``--rounds`` of each, interleaved. Prints a table and one JSON line: the median and p90 per
kind and reader, in ms.
kind and reader, in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import itertools
import os
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import percentile, print_measures
from seed import feature_name, scratch_database, seed

from flaggery.clock import utc_now
from flaggery.store.database import Database
from flaggery.store.log_tail import read_tail_asyncpg
from flaggery.store.replica import Replica, TailReader
from flaggery.store.repository import AsyncFlaggery
from flaggery.store.urls import libpq_dsn

Write = Callable[[int], Awaitable[object]]


def writes(store: AsyncFlaggery, subjects: int) -> dict[str, Write]:
    """One write of each kind; the round number picks what it changes."""
    proportions = (0.1, 0.25, 0.5, 0.9)

    async def subject(n: int) -> None:
        await store.set_subject_weight(1 + (n * 7919) % subjects, 1 + n % 10)

    async def rollout(n: int) -> None:
        await store.set_rollout_proportion(feature_name(2 * (n % 5)), proportions[n % 4])

    async def group(n: int) -> None:
        subject_id = 1 + (n // 2 * 104_729) % subjects  # joins, then leaves
        if n % 2 == 0:
            await store.add_subject_to_group(subject_id, "group_1")
        else:
            await store.rm_subject_from_group(subject_id, "group_1")

    async def override(n: int) -> None:
        if n % 2 == 0:
            await store.add_group_override("group_2", feature_name(7), "A")
        else:
            await store.rm_group_override("group_2", feature_name(7))

    async def test(n: int) -> None:
        name = f"bench_{n // 3}"  # started, stopped, deleted
        if n % 3 == 0:
            end = datetime.now(UTC) + timedelta(hours=1)
            variants = {"control": {feature_name(1): "A"}, "experiment": {feature_name(1): "B"}}
            await store.add_abtest(name, datetime.now(UTC), end, variants, [0.5, 0.5])
        elif n % 3 == 1:
            await store.stop_abtest(name)
        else:
            await store.rm_abtest(name)

    return {"subject": subject, "rollout": rollout, "group": group, "override": override,
            "test": test}  # fmt: skip


async def measure(args: argparse.Namespace) -> dict[str, object]:
    async with scratch_database(args.postgres_url) as db_url:
        print(f"seeding {args.subjects:,} subjects into {make_url(db_url).database} ...")
        await seed(db_url, args.subjects)
        cpu: dict[str, list[float]] = {}
        async with contextlib.AsyncExitStack() as stack:
            store = await stack.enter_async_context(AsyncFlaggery.from_db_url(db_url))
            readers = await _readers(db_url, stack)
            for replica, _ in readers.values():
                await replica.reload()
            kinds = writes(store, args.subjects)
            for n, (kind, write) in itertools.product(range(args.rounds), kinds.items()):
                await write(n)
                # Alternate which reader goes first: the second finds the server's caches warm.
                order = list(readers.items())[:: 1 if n % 2 else -1]
                for reader, (replica, read_tail) in order:
                    started = time.process_time()
                    if not await replica.refresh(read_tail):
                        raise RuntimeError(f"The {reader} replica failed to refresh")
                    cpu.setdefault(f"{kind}_{reader}", []).append(
                        1000 * (time.process_time() - started)
                    )
            for reader, (replica, _) in readers.items():
                if replica.revision != await store.revision():
                    raise RuntimeError(f"The {reader} replica did not reach the store's revision")
    result: dict[str, object] = {"subjects": args.subjects, "rounds": args.rounds}
    for name, times in cpu.items():
        times.sort()
        result[f"{name}_cpu_ms_p50"] = round(percentile(times, 0.5), 3)
        result[f"{name}_cpu_ms_p90"] = round(percentile(times, 0.9), 3)
    result["load_average"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return result


async def _readers(
    db_url: str, stack: contextlib.AsyncExitStack
) -> dict[str, tuple[Replica, TailReader | None]]:
    """Two replicas on their own connections: one reads the log through a pool (SQLAlchemy,
    as before), one on a plain asyncpg connection (as the PostgreSQL feed's LISTEN one)."""
    pooled = Database(db_url)
    stack.push_async_callback(pooled.dispose)
    raw_db = Database(db_url)  # for the first full load only
    stack.push_async_callback(raw_db.dispose)
    connection = await asyncpg.connect(libpq_dsn(make_url(db_url)))
    stack.push_async_callback(connection.close)
    return {
        "pool": (Replica(pooled, utc_now), None),
        "listen": (Replica(raw_db, utc_now), functools.partial(read_tail_asyncpg, connection)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--subjects", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    print_measures("refresh_cpu", asyncio.run(measure(args)))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
