"""Soak: a read-only replica and an admin server under steady load, watched for leaks.

    python bench/soak.py [--duration 180] [--connections 16] [--writes-per-second 5]

Seeds the benchmark dataset (bench/seed.py) into a scratch PostgreSQL database (dropped at the
end), starts a read-only replica (2 workers) and an admin server (1 worker), then for
``--duration`` seconds drives the replica with wrk over loopback (random subject ids, the Lua
script of http_bench.py) while a Python loop sends a trickle of admin writes: weight changes,
rollout moves, group joins and leaves. About every 10 s it samples the RSS and open file
descriptors of every server process (uvicorn parent and workers) and the PostgreSQL
connections to the database. Prints a table and one JSON line.

Reads served are wrk's 2xx responses; read errors are its non-2xx responses plus socket errors.
Everything stops by itself: wrk runs for the duration, the writer stops at the same deadline,
and the servers are terminated (their process groups killed) on the way out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import asyncpg
import psutil
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_bench import WRK_SCRIPT, flaggery_command, free_port, server
from report import parse_wrk
from seed import FEATURES, SUBJECTS, feature_name, scratch_database, seed

from flaggery.store.urls import libpq_dsn

SAMPLE_SECONDS = 10.0
WRK_GRACE_SECONDS = 30.0
WRITE_TIMEOUT_SECONDS = 10.0
JOIN_GROUP = "group_0"
MB = 1024 * 1024


@dataclass
class Sample:
    at: float
    processes: dict[str, dict[str, int]]
    connections: int
    listen_connections: int


@dataclass
class Writes:
    """The admin writer's tally; ``by_kind`` counts the acknowledged ones."""

    acknowledged: int = 0
    failed: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


@dataclass
class SoakResult:
    elapsed: float
    wrk: dict[str, float]
    writes: Writes
    samples: list[Sample]


# ---------------------------------------------------------------------------- sampling


def server_processes(parents: dict[str, int]) -> dict[str, psutil.Process]:
    """Name -> process, for every server parent and the workers it spawned."""
    found = {}
    for name, pid in parents.items():
        parent = psutil.Process(pid)
        workers = [c for c in parent.children() if "spawn_main" in " ".join(c.cmdline())]
        found[f"{name} parent" if workers else name] = parent
        for number, worker in enumerate(sorted(workers, key=lambda w: w.pid), 1):
            found[f"{name} worker {number}"] = worker
    return found


async def sample(
    start: float, parents: dict[str, int], pg: asyncpg.Connection, database: str
) -> Sample:
    processes = {}
    for name, process in server_processes(parents).items():
        with process.oneshot():
            processes[name] = {
                "pid": process.pid,
                "rss": process.memory_info().rss,
                "fds": process.num_fds(),
            }
    row = await pg.fetchrow(
        "SELECT count(*) AS total, count(*) FILTER (WHERE query LIKE 'LISTEN%') AS listen "
        "FROM pg_stat_activity WHERE datname = $1",
        database,
    )
    return Sample(round(time.monotonic() - start, 1), processes, row["total"], row["listen"])


# ---------------------------------------------------------------------------- load


async def run_wrk(base: str, script: Path, args: argparse.Namespace) -> str:
    process = await asyncio.create_subprocess_exec(
        *("wrk", "-t", str(args.threads), "-c", str(args.connections)),
        *("-d", f"{args.duration}s", "--latency", "-s", str(script), base),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), args.duration + WRK_GRACE_SECONDS)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed:\n{output.decode()}")
    return output.decode()


class AdminWriter:
    """A trickle of admin writes at a steady rate, on one keep-alive connection."""

    def __init__(self, port: int, rate: float, members: set[int], seed: int = 5) -> None:
        self.interval = 1.0 / rate
        self.members = members
        self.rng = random.Random(seed)
        self.writes = Writes()
        self.connection = http.client.HTTPConnection(
            "127.0.0.1", port, timeout=WRITE_TIMEOUT_SECONDS
        )

    def run(self, deadline: float, stop: threading.Event) -> Writes:
        next_at = time.monotonic()
        while next_at < deadline and not stop.is_set():
            kind, method, path = self.next_write()
            self.send(kind, method, path)
            next_at += self.interval
            stop.wait(max(0.0, next_at - time.monotonic()))
        self.connection.close()
        return self.writes

    def next_write(self) -> tuple[str, str, str]:
        rng = self.rng
        kind = rng.choices(["weight", "rollout", "group"], weights=[3, 1, 1])[0]
        if kind == "weight":
            query = urlencode({"weight": rng.randint(1, 10)})
            return kind, "PUT", f"/v1/subjects/{rng.randint(1, SUBJECTS)}?{query}"
        if kind == "rollout":
            feature = feature_name(2 * rng.randrange(FEATURES // 2))  # even ones have rollouts
            query = urlencode({"proportion": rng.choice([0.1, 0.25, 0.5, 0.9])})
            return kind, "PUT", f"/v1/features/{feature}/rollout?{query}"
        subject_id = rng.randint(1, SUBJECTS)
        path = f"/v1/groups/{JOIN_GROUP}/subjects/{subject_id}"
        if subject_id in self.members:
            self.members.remove(subject_id)
            return "leave", "DELETE", path
        self.members.add(subject_id)
        return "join", "POST", path

    def send(self, kind: str, method: str, path: str) -> None:
        try:
            self.connection.request(method, path)
            response = self.connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as error:
            self.connection.close()  # reconnects on the next request
            self.failed(f"{method} {path}: {error!r}")
            return
        if 200 <= response.status < 300:
            self.writes.acknowledged += 1
            self.writes.by_kind[kind] = self.writes.by_kind.get(kind, 0) + 1
        else:
            self.failed(f"{method} {path}: {response.status} {body[:200]!r}")

    def failed(self, error: str) -> None:
        self.writes.failed += 1
        if len(self.writes.errors) < 10:
            self.writes.errors.append(error)


def group_members(port: int) -> set[int]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=WRITE_TIMEOUT_SECONDS)
    try:
        connection.request("GET", f"/v1/groups/{JOIN_GROUP}")
        return set(json.loads(connection.getresponse().read())["subjects"])
    finally:
        connection.close()


# ---------------------------------------------------------------------------- the run


async def soak(
    args: argparse.Namespace, ports: dict[str, int], parents: dict[str, int], db_url: str
) -> SoakResult:
    database = str(make_url(db_url).database)
    pg = await asyncpg.connect(libpq_dsn(make_url(args.postgres_url)))
    stop = threading.Event()
    try:
        with tempfile.TemporaryDirectory() as directory:
            script = Path(directory) / "random_subjects.lua"
            script.write_text(WRK_SCRIPT % SUBJECTS)
            start = time.monotonic()
            samples = [await sample(start, parents, pg, database)]
            writer = AdminWriter(
                ports["admin"], args.writes_per_second, group_members(ports["admin"])
            )
            # Cancelled (SIGTERM, Ctrl-C) or failing, the group kills wrk before anything else.
            async with asyncio.TaskGroup() as load:
                reads = load.create_task(
                    run_wrk(f"http://127.0.0.1:{ports['replica']}", script, args)
                )
                writes = load.create_task(
                    asyncio.to_thread(writer.run, start + args.duration, stop)
                )
                while not reads.done():
                    await asyncio.wait({reads}, timeout=SAMPLE_SECONDS)
                    samples.append(await sample(start, parents, pg, database))
            elapsed = time.monotonic() - start
    finally:
        stop.set()
        await pg.close()
    return SoakResult(elapsed, parse_wrk(reads.result()), writes.result(), samples)


async def run(args: argparse.Namespace) -> None:
    main_task = asyncio.current_task()
    assert main_task is not None
    # Stopped with SIGTERM, unwind like Ctrl-C: servers terminated, scratch database dropped.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    async with scratch_database(args.postgres_url) as db_url:
        print(f"seeding {SUBJECTS:,} subjects into {make_url(db_url).database} ...", flush=True)
        await seed(db_url)
        ports = {"replica": free_port(), "admin": free_port()}
        with contextlib.ExitStack() as stack:
            parents: dict[str, int] = {}
            stack.callback(kill_groups, parents)  # last out: anything the parents left behind
            for name, workers, admin in (("replica", 2, "false"), ("admin", 1, "true")):
                env = {"FLAGGERY_DB_URL": db_url, "FLAGGERY_ADMIN_MODE": admin}
                command = flaggery_command(ports[name], workers)
                probe = f"http://127.0.0.1:{ports[name]}/readyz"
                parents[name] = stack.enter_context(server(command, env, probe)).pid
            print(f"soaking for {args.duration} s ...", flush=True)
            result = await soak(args, ports, parents, db_url)
    report(result, args)


def kill_groups(parents: dict[str, int]) -> None:
    for pid in parents.values():  # each server started its own session: group id = its pid
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


# ---------------------------------------------------------------------------- the report


def report(result: SoakResult, args: argparse.Namespace) -> None:
    wrk, writes, samples, elapsed = result.wrk, result.writes, result.samples, result.elapsed
    first, last = samples[0], samples[-1]
    served = int(wrk["requests"] - wrk["non_2xx"])
    read_errors = int(wrk["non_2xx"] + wrk["socket_errors"])
    print()
    print(f"duration             {elapsed:>12.1f} s   ({len(samples)} samples)")
    print(
        f"reads served         {served:>12,}     ({served / elapsed:,.0f}/s, "
        f"p50 {wrk.get('p50_ms', 0):.3f} ms, p99 {wrk.get('p99_ms', 0):.3f} ms)"
    )
    print(
        f"read errors          {read_errors:>12,}     (non-2xx {int(wrk['non_2xx'])}, "
        f"socket errors {int(wrk['socket_errors'])})"
    )
    print(f"writes acknowledged  {writes.acknowledged:>12,}     {writes.by_kind}")
    print(
        f"writes failed        {writes.failed:>12,}"
        + (f"     {writes.errors[:3]}" if writes.errors else "")
    )
    connections = f"{first.connections} -> {last.connections}"
    print(
        f"pg connections       {connections:>12}     (start -> end; LISTEN "
        f"{first.listen_connections} -> {last.listen_connections})"
    )
    print()
    print_processes(samples)
    summary = {
        "benchmark": "soak",
        "duration_s": round(elapsed, 1),
        "connections": args.connections,
        "writes_per_second": args.writes_per_second,
        "reads_served": served,
        "read_errors": read_errors,
        "wrk": wrk,
        "writes": asdict(writes),
        "samples": [asdict(s) for s in samples],
    }
    print(json.dumps(summary))


def print_processes(samples: list[Sample]) -> None:
    """RSS at the start (before load), after the first interval (warm), at the end, and its
    peak; open file descriptors at the start and the end."""
    first, warm, last = samples[0], samples[min(1, len(samples) - 1)], samples[-1]
    print(
        f"{'process':<18}{'pid':>8}{'RSS start':>11}{'RSS warm':>10}{'RSS end':>10}"
        f"{'RSS max':>10}{'fds start':>11}{'fds end':>9}"
    )
    gone = {"pid": 0, "rss": 0, "fds": 0}
    for name, start in first.processes.items():
        rss = [s.processes.get(name, gone)["rss"] / MB for s in (first, warm, last)]
        peak = max(s.processes.get(name, gone)["rss"] for s in samples) / MB
        end = last.processes.get(name, gone)
        moved = "" if end["pid"] == start["pid"] else f"  (now pid {end['pid']})"
        print(
            f"{name:<18}{start['pid']:>8}{rss[0]:>8.1f} MB{rss[1]:>7.1f} MB{rss[2]:>7.1f} MB"
            f"{peak:>7.1f} MB{start['fds']:>11}{end['fds']:>9}{moved}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--duration", type=int, default=180, help="seconds of load")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--writes-per-second", type=float, default=5.0)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install -y wrk)")
    try:
        asyncio.run(run(args))
    except (asyncio.CancelledError, KeyboardInterrupt):
        sys.exit("soak: interrupted (servers stopped, scratch database dropped)")


if __name__ == "__main__":
    main()
