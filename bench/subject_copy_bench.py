"""Reading the subjects table into columns on PostgreSQL: binary COPY (what the loader does)
against fetching rows through SQLAlchemy (what it did before, and still does on SQLite).

    python bench/subject_copy_bench.py [--subjects 500000] [--rounds 3]

Adds the subjects to a scratch database, then reads them both ways in alternating order, each
in its own transaction, and reports the median seconds of each and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from array import array
from collections.abc import Awaitable, Callable

from report import print_measures
from seed import SERVER_URL, scratch_database
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from flaggery.engine.model import SubjectColumns
from flaggery.store import tables as t
from flaggery.store.repository import AsyncFlaggery
from flaggery.store.subjects.binary_copy import copy_subject_columns

Reader = Callable[[AsyncConnection], Awaitable[SubjectColumns]]


async def by_rows(conn: AsyncConnection) -> SubjectColumns:
    columns = SubjectColumns(array("q"), array("q"), array("q"))
    subjects = t.subjects.c
    query = select(subjects.id, subjects.weight, subjects.bucket_id).order_by(subjects.id)
    result = await conn.stream(query.execution_options(yield_per=20_000))
    async for rows in result.partitions():
        ids, weights, buckets = zip(*rows, strict=True)
        columns.ids.extend(ids)
        columns.weights.extend(weights)
        columns.buckets.extend(buckets)
    return columns


async def by_copy(conn: AsyncConnection) -> SubjectColumns:
    raw = await conn.get_raw_connection()
    return await copy_subject_columns(raw.driver_connection)


async def timed(store: AsyncFlaggery, reader: Reader, subjects: int) -> float:
    async with store.database.read() as conn, conn.begin():
        started = time.perf_counter()
        columns = await reader(conn)
        seconds = time.perf_counter() - started
    assert len(columns.ids) == subjects, "not every subject was read"
    return seconds


async def run(args: argparse.Namespace) -> dict[str, float]:
    rng = random.Random(5)
    seconds: dict[str, list[float]] = {"rows": [], "copy": []}
    readers: dict[str, Reader] = {"rows": by_rows, "copy": by_copy}
    async with scratch_database(args.url) as url, AsyncFlaggery.from_db_url(url) as store:
        await store.upgrade_db()
        await store.increase_buckets(100)
        await store.add_subjects([(i, rng.randint(1, 100)) for i in range(1, args.subjects + 1)])
        for round_number in range(args.rounds):
            order = ["rows", "copy"] if round_number % 2 == 0 else ["copy", "rows"]
            for name in order:
                seconds[name].append(await timed(store, readers[name], args.subjects))
    rows, copy = statistics.median(seconds["rows"]), statistics.median(seconds["copy"])
    return {
        "subjects": args.subjects,
        "rows_seconds": round(rows, 3),
        "copy_seconds": round(copy, 3),
        "speedup": round(rows / copy, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=SERVER_URL)
    parser.add_argument("--subjects", type=int, default=500_000)
    parser.add_argument("--rounds", type=int, default=3)
    print_measures("subject_copy", asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
