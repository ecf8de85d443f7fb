"""Imports in batches (issue 25, goal 3): many `add_subjects` calls as fast as one, on PostgreSQL.

    python bench/batch_import_bench.py                    # 200 batches of 50,000: ten million
    python bench/batch_import_bench.py --batches 20 --rest-batches 4 --one-call

In a scratch database (dropped at the end) with 100 buckets: adds ``--batches`` batches of
``--batch-size`` subjects (ids ascending, weights 1..10 from a fixed seed) through the
synchronous `flaggery.core.Flaggery`, as a user importing a file does, timing each call; checks
every placement against an independent one-by-one simulation (bench/ten_million_bench.py's
``one_by_one``) and the stored bucket weights against it. Then starts an admin server on the
same database and adds ``--rest-batches`` more batches with ``POST /v1/subjects`` (httpx, one
JSON body per batch), timing each request; their placement is checked too. With
``--one-call``, the same number of subjects in one call into a second scratch database, for
the per-subject rate a single call reaches in the same run; with ``--row-by-row-key``, the same
batches into another with the subjects' foreign key checked row by row, as before issue 25.

Targets: the batches in <= 30 s in all for ten million, the time per batch flat (the first
and last ten are printed), REST at the same per-subject rate as Python. The machine's load
average is printed beside the numbers; a busy machine makes them slower, not comparable.
Beside the wall clock each Python batch is measured in CPU seconds, which load disturbs far
less: this process's (``time.process_time``: the facade's loop thread included) and, when
PostgreSQL runs on this machine, that of the server processes serving the scratch database
(their utime + stime from /proc, in clock ticks of 10 ms); their medians are
``client_cpu_ms_per_batch`` and ``server_cpu_ms_per_batch``. A REST batch's CPU in the admin
server (its process tree: the request, the add and its own snapshot's patch) is
``rest_admin_cpu_ms_per_batch``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import subprocess
import sys
import time
from array import array
from collections.abc import Iterator
from operator import eq
from pathlib import Path
from typing import Any

import httpx
import msgspec
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_bench import flaggery_command, free_port, wait_until_up
from report import print_measures
from seed import BUCKETS, SERVER_URL, scratch_database
from ten_million_bench import one_by_one

from flaggery.core import Flaggery
from flaggery.store.subjects import insert
from flaggery.store.subjects.insert import KEY_ASIDE_BATCH

WEIGHT_SEED = 7
# An admin server loads every subject before it is ready: ten million took over 30 s at load 17.
READY_SECONDS = 600.0


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def server_cpu_seconds(database: str) -> float | None:
    """User + system CPU seconds of the local PostgreSQL backends connected to `database`
    (their command lines read "postgres: USER DATABASE ..."); None without /proc or if none
    is found (a remote server)."""
    tick = os.sysconf("SC_CLK_TCK")
    total, found = 0, False
    for pid in filter(str.isdigit, os.listdir("/proc") if os.path.isdir("/proc") else ()):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
            if not command.startswith(b"postgres: ") or f" {database} ".encode() not in command:
                continue
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (proc(5): fields 14, 15)
        found = True
    return total / tick if found else None


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU seconds of process `root` and its descendants (the admin server
    and, with workers, its worker processes), from /proc; 0 without /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    parent: dict[int, int] = {}
    times: dict[int, int] = {}
    for pid in filter(str.isdigit, os.listdir("/proc") if os.path.isdir("/proc") else ()):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(pid)] = int(fields[1])
        times[int(pid)] = int(fields[11]) + int(fields[12])
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, ppid in parent.items() if ppid in tree} - tree
        tree |= more
        grew = bool(more)
    return sum(times.get(pid, 0) for pid in tree) / tick


def batches(count: int, size: int, weights: array[int]) -> Iterator[list[tuple[int, int]]]:
    """The (id, weight) pairs of each batch, built before its call is timed."""
    for index in range(count):
        start = index * size
        yield [(start + i + 1, weights[start + i]) for i in range(size)]


def import_in_batches(url: str, args: argparse.Namespace, weights: array[int]) -> dict[str, Any]:
    seconds: list[float] = []
    client_cpu: list[float] = []
    server_cpu: list[float] = []
    placed = array("q")
    database = make_url(url).database or ""
    with Flaggery.from_db_url(url) as flaggery:
        flaggery.upgrade_db()
        flaggery.increase_buckets(BUCKETS)
        for pairs in batches(args.batches, args.batch_size, weights):
            server_before = server_cpu_seconds(database)
            cpu_before = time.process_time()
            started = time.perf_counter()
            placed.extend(flaggery.add_subjects(pairs))
            seconds.append(time.perf_counter() - started)
            client_cpu.append(time.process_time() - cpu_before)
            server_after = server_cpu_seconds(database)
            if server_before is not None and server_after is not None:
                server_cpu.append(server_after - server_before)
            del pairs
    return {
        "seconds": seconds,
        "placed": placed,
        "client_cpu": client_cpu,
        "server_cpu": server_cpu,
    }


async def rest_batches(url: str, args: argparse.Namespace, weights: array[int]) -> dict[str, Any]:
    """``--rest-batches`` batches after the Python ones, each one POST /v1/subjects."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"FLAGGERY_DB_URL": url, "FLAGGERY_ADMIN_MODE": "true"}
    seconds: list[float] = []
    admin_cpu: list[float] = []
    placed = array("q")
    encoder = msgspec.json.Encoder()
    first = args.batches * args.batch_size
    with admin_server(flaggery_command(port, 1), env, base + "/readyz") as server:
        async with httpx.AsyncClient(base_url=base, timeout=300) as client:
            for index in range(args.rest_batches):
                start = first + index * args.batch_size
                body = encoder.encode(
                    [
                        {"id": start + i + 1, "weight": weights[start + i]}
                        for i in range(args.batch_size)
                    ]
                )
                cpu_before = tree_cpu_seconds(server.pid)
                started = time.perf_counter()
                response = await client.post(
                    "/v1/subjects", content=body, headers={"content-type": "application/json"}
                )
                seconds.append(time.perf_counter() - started)
                admin_cpu.append(tree_cpu_seconds(server.pid) - cpu_before)
                response.raise_for_status()
                placed.extend(response.json()["bucket_ids"])
    return {"seconds": seconds, "placed": placed, "admin_cpu": admin_cpu}


@contextlib.contextmanager
def admin_server(
    command: list[str], env: dict[str, str], probe: str
) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(command, env={**os.environ, **env}, start_new_session=True)
    try:
        wait_until_up(probe, READY_SECONDS)
        yield process
    finally:
        process.terminate()
        process.wait(60)


def one_call(url: str, subjects: int, weights: array[int]) -> float:
    pairs = list(zip(range(1, subjects + 1), weights[:subjects], strict=True))
    with Flaggery.from_db_url(url) as flaggery:
        flaggery.upgrade_db()
        flaggery.increase_buckets(BUCKETS)
        started = time.perf_counter()
        flaggery.add_subjects(pairs)
        return time.perf_counter() - started


def placement_checks(placed: array[int], weights: array[int], stored: dict[int, int]) -> bool:
    expected, heap = one_by_one(BUCKETS, weights[: len(placed)])
    return all(map(eq, expected, placed)) and stored == {bucket: w for w, bucket in heap}


def stored_weights(url: str) -> dict[int, int]:
    with Flaggery.from_db_url(url) as flaggery:
        return {bucket.id: bucket.weight for bucket in flaggery.get_buckets().buckets}


def us_per_subject(seconds: list[float], size: int) -> float:
    return round(statistics.median(seconds) / size * 1e6, 2)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    total = (args.batches + args.rest_batches) * args.batch_size
    rng = random.Random(WEIGHT_SEED)
    weights = array("q", (rng.randint(1, 10) for _ in range(total)))
    result: dict[str, Any] = {"load_average_start": load_average()}
    async with scratch_database(args.url) as url:
        python = await asyncio.to_thread(import_in_batches, url, args, weights)
        result["load_average_after_python"] = load_average()
        print(f"python batches: {[round(s, 3) for s in python['seconds']]}", flush=True)
        rest = await rest_batches(url, args, weights) if args.rest_batches else None
        placed = python["placed"] + (rest["placed"] if rest else array("q"))
        stored = await asyncio.to_thread(stored_weights, url)
    seconds: list[float] = python["seconds"]
    result |= {
        "batches": args.batches,
        "batch_size": args.batch_size,
        "total_s": round(sum(seconds), 2),
        "first_ten_s": [round(s, 3) for s in seconds[:10]],
        "last_ten_s": [round(s, 3) for s in seconds[-10:]],
        "last_ten_vs_first_ten": round(sum(seconds[-10:]) / sum(seconds[:10]), 2),
        "python_us_per_subject": us_per_subject(seconds, args.batch_size),
        "client_cpu_ms_per_batch": round(statistics.median(python["client_cpu"]) * 1e3, 1),
        "placed_as_one_by_one": placement_checks(placed, weights, stored),
    }
    if python["server_cpu"]:
        server_ms = statistics.median(python["server_cpu"]) * 1e3
        result["server_cpu_ms_per_batch"] = round(server_ms, 1)
    if rest:
        result["rest_s"] = [round(s, 3) for s in rest["seconds"]]
        result["rest_us_per_subject"] = us_per_subject(rest["seconds"], args.batch_size)
        result["rest_admin_cpu_ms_per_batch"] = round(statistics.median(rest["admin_cpu"]) * 1e3)
        python_tail = seconds[-len(rest["seconds"]) :]
        result["rest_vs_python_rate"] = round(
            statistics.median(python_tail) / statistics.median(rest["seconds"]), 2
        )
    if args.row_by_row_key:
        insert.KEY_ASIDE_BATCH = sys.maxsize  # as before: every new row checks the key
        async with scratch_database(args.url) as url:
            keyed = await asyncio.to_thread(import_in_batches, url, args, weights)
        insert.KEY_ASIDE_BATCH = KEY_ASIDE_BATCH
        result["row_by_row_key_total_s"] = round(sum(keyed["seconds"]), 2)
        result["key_aside_vs_row_by_row_time"] = round(sum(seconds) / sum(keyed["seconds"]), 2)
    if args.one_call:
        subjects = args.batches * args.batch_size
        async with scratch_database(args.url) as url:
            single = await asyncio.to_thread(one_call, url, subjects, weights)
        result["one_call_s"] = round(single, 2)
        result["one_call_us_per_subject"] = round(single / subjects * 1e6, 2)
        result["batches_vs_one_call_time"] = round(sum(seconds) / single, 2)
    result["load_average_end"] = load_average()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=SERVER_URL, help="a PostgreSQL server URL")
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=50_000)
    parser.add_argument("--rest-batches", type=int, default=10)
    parser.add_argument("--one-call", action="store_true", help="also time one call of them all")
    parser.add_argument(
        "--row-by-row-key",
        action="store_true",
        help="also import the same batches with the foreign key checked row by row (as before)",
    )
    print_measures("batch_import", asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
