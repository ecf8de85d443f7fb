"""Single-subject writes from Python asyncio clients (issue 25, goal 4), checked afterwards.

    python bench/write_clients_bench.py [--duration 20] [--clients 16] [--client raw|httpx]

Seeds the benchmark dataset (bench/seed.py) into a scratch PostgreSQL database (dropped at the
end), starts one admin server (1 worker), and for ``--duration`` seconds drives it from
``--clients`` clients in one asyncio loop, each on its own keep-alive connection and
sending its next ``POST /v1/subjects/{id}?weight=w`` (a new id each) when the last is answered.
``--client raw`` (the default) writes and reads HTTP/1.1 by hand on asyncio streams, about
0.3 ms of client CPU a write, so the server sets the rate; ``--client httpx`` uses httpx as an
application might, about 3 ms a write, and on two cores the client is then the limit.
A write is acknowledged by its 201; afterwards every acknowledged subject must be in the
subjects table with its weight and the bucket its answer named, and the acknowledged revisions
must be distinct. bench/write_burst_bench.py drives the same server with wrk (C) instead: here
the client is Python, as an application's would be, and shares the two cores with the server.

Prints a table and one JSON line, with the load average, the CPU the client and the server
used per write, and the PostgreSQL transactions per write (how well the group commit batches;
it also counts the server's reads: change-log tails, pings). Target: >= 1,000 acknowledged
writes/s from 16 clients.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
import time
from pathlib import Path

import asyncpg
import httpx
import psutil
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_bench import flaggery_command, free_port, server
from report import percentile, print_measures
from seed import SERVER_URL, scratch_database, seed

from flaggery.store.urls import libpq_dsn

FIRST_ID = 1_000_001


class Acks:
    def __init__(self) -> None:
        self.subjects: dict[int, tuple[int, int]] = {}
        """Subject id -> (weight, bucket) as acknowledged."""
        self.revisions: list[int] = []
        self.latencies_ms: list[float] = []
        self.failed = 0


async def httpx_client(base: str, ids: itertools.count[int], stop: float, acks: Acks) -> None:
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:
        while time.perf_counter() < stop:
            subject = next(ids)
            weight = 1 + subject % 10
            started = time.perf_counter()
            response = await http.post(f"/v1/subjects/{subject}", params={"weight": weight})
            acks.latencies_ms.append((time.perf_counter() - started) * 1000)
            if response.status_code != 201:
                acks.failed += 1
                continue
            acks.subjects[subject] = (weight, response.json()["bucket_id"])
            acks.revisions.append(int(response.headers["x-flaggery-revision"]))


async def raw_client(base: str, ids: itertools.count[int], stop: float, acks: Acks) -> None:
    """The same requests written and read by hand on one asyncio stream: a tenth of httpx's
    CPU per request, so that the server, not the client, sets the rate."""
    url = httpx.URL(base)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    try:
        while time.perf_counter() < stop:
            subject = next(ids)
            weight = 1 + subject % 10
            started = time.perf_counter()
            writer.write(
                f"POST /v1/subjects/{subject}?weight={weight} HTTP/1.1\r\n"
                f"Host: {url.host}\r\nContent-Length: 0\r\n\r\n".encode()
            )
            status, headers, body = await read_response(reader)
            acks.latencies_ms.append((time.perf_counter() - started) * 1000)
            if status != 201:
                acks.failed += 1
                continue
            acks.subjects[subject] = (weight, json.loads(body)["bucket_id"])
            acks.revisions.append(int(headers[b"x-flaggery-revision"]))
    finally:
        writer.close()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes], bytes]:
    """Status, headers (lower-case names) and body of one HTTP/1.1 response with a
    Content-Length (every answer of this route has one)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head[:-4].split(b"\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers[b"content-length"]))
    return int(status_line.split()[1]), headers, body


CLIENTS = {"raw": raw_client, "httpx": httpx_client}


async def verify(dsn: str, acks: Acks) -> int:
    """Every acknowledged subject is stored as acknowledged; returns how many were checked."""
    assert len(set(acks.revisions)) == len(acks.revisions), "a revision acknowledged twice"
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT id, weight, bucket_id FROM subjects WHERE id = ANY($1::bigint[])",
            list(acks.subjects),
        )
    finally:
        await connection.close()
    stored = {row["id"]: (row["weight"], row["bucket_id"]) for row in rows}
    missing = [sid for sid, ack in acks.subjects.items() if stored.get(sid) != ack]
    assert not missing, f"{len(missing)} acknowledged writes not stored as answered: {missing[:5]}"
    return len(stored)


async def transactions(dsn: str) -> int:
    """Transactions PostgreSQL has counted in the benchmark's database (committed and rolled
    back: the batches, and every read of the change log, pool ping and catch-up). The server
    reports a backend's counts when it goes idle, at most once a second: read after a pause."""
    connection = await asyncpg.connect(dsn)
    try:
        query = (
            "SELECT xact_commit + xact_rollback FROM pg_stat_database"
            " WHERE datname = current_database()"
        )
        return int(await connection.fetchval(query))
    finally:
        await connection.close()


def cpu_seconds(process: psutil.Process, children: bool = True) -> float:
    """User and system CPU seconds of `process`, and of its children unless told not to."""
    family = (process, *process.children(recursive=True)) if children else (process,)
    return sum(sum(p.cpu_times()[:2]) for p in family)


async def run(args: argparse.Namespace) -> dict[str, object]:
    async with scratch_database(args.url) as url:
        await seed(url)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {"FLAGGERY_DB_URL": url, "FLAGGERY_ADMIN_MODE": "true"}
        with server(flaggery_command(port, 1), env, base + "/readyz") as process:
            server_process, this_process = psutil.Process(process.pid), psutil.Process()
            acks, ids = Acks(), itertools.count(FIRST_ID)
            dsn = libpq_dsn(make_url(url))
            await asyncio.sleep(1.5)  # the startup's counts reported
            xacts = await transactions(dsn)
            server_cpu, client_cpu = cpu_seconds(server_process), cpu_seconds(this_process, False)
            stop = time.perf_counter() + args.duration
            client = CLIENTS[args.client]
            clients = (client(base, ids, stop, acks) for _ in range(args.clients))
            await asyncio.gather(*clients)
            server_cpu = cpu_seconds(server_process) - server_cpu
            # Not this process's children: the server is one of them.
            client_cpu = cpu_seconds(this_process, False) - client_cpu
            await asyncio.sleep(1.5)
            xacts = await transactions(dsn) - xacts
            load = " ".join(f"{value:.2f}" for value in os.getloadavg())
        written = max(len(acks.subjects), 1)
        return {
            "client": args.client,
            "clients": args.clients,
            "duration_s": args.duration,
            "acknowledged": len(acks.subjects),
            "writes_per_s": round(len(acks.subjects) / args.duration),
            "failed": acks.failed,
            "p50_ms": round(percentile(acks.latencies_ms, 0.5), 2),
            "p99_ms": round(percentile(acks.latencies_ms, 0.99), 2),
            "server_cpu_ms_per_write": round(server_cpu * 1000 / written, 2),
            "client_cpu_ms_per_write": round(client_cpu * 1000 / written, 2),
            "pg_transactions_per_write": round(xacts / written, 3),
            "verified": await verify(libpq_dsn(make_url(url)), acks),
            "load_average": load,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=SERVER_URL, help="a PostgreSQL server URL")
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--client", choices=CLIENTS, default="raw", help="what sends the writes")
    print_measures("write_clients", asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
