"""Fan-out of GET /v1/stream: many concurrent clients on one server with 2 workers.

    python bench/stream_fanout_bench.py         # 2,000 connections, 20 writes

An admin server (PostgreSQL scratch database, 2 workers) gets ``--clients`` stream connections
from this process; then 20 writes are made one at a time through REST. For each write, every
client's arrival time of its event is compared with the moment the write was sent (so the
latency includes the write itself: the server publishes before it answers). The clients are
one Python process parsing every stream, which may itself be the bottleneck.
Memory per connection: the growth of the server processes' RSS (psutil) from before the clients
connected to after, divided by the clients. Target (issue 11): every client gets every event,
p99 <= 250 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import psutil
from propagation_bench import percentile
from report import print_measures
from seed import SERVER_URL, scratch_database, seed


@contextlib.contextmanager
def admin_server(db_url: str) -> Iterator[tuple[str, psutil.Process]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLAGGERY_")}
    command = [sys.executable, "-m", "flaggery.cli", "--admin", "--db-url", db_url,
               "--workers", "2", "--port", str(port), "--log-level", "warning"]  # fmt: skip
    process = subprocess.Popen(command, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            time.sleep(0.1)
        yield url, psutil.Process(process.pid)
    finally:
        process.terminate()
        process.wait(15)


def server_rss(root: psutil.Process) -> int:
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])


async def listen(client: httpx.AsyncClient, arrivals: dict[int, float], ready: asyncio.Event,
                 connected: list[int]) -> None:  # fmt: skip
    async with client.stream("GET", "/v1/stream") as response:
        connected.append(1)
        ready.set()
        async for line in response.aiter_lines():
            if line.startswith("id: "):
                arrivals[int(line[4:])] = time.time()


async def measure(url: str, root: psutil.Process, clients: int, writes: int) -> dict[str, object]:
    limits = httpx.Limits(max_connections=clients + 10, max_keepalive_connections=0)
    timeout = httpx.Timeout(30.0, read=None)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as http:
        before = server_rss(root)
        arrivals: list[dict[int, float]] = [{} for _ in range(clients)]
        connected: list[int] = []
        ready = asyncio.Event()
        tasks = [asyncio.create_task(listen(http, arrivals[i], ready, connected))
                 for i in range(clients)]  # fmt: skip
        while len(connected) < clients:
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        after = server_rss(root)
        written: dict[int, float] = {}
        for n in range(writes):
            sent = time.time()  # events may arrive before the write's own response does
            response = await http.post(f"/v1/features/fanout_{n}")
            written[int(response.headers["x-flaggery-revision"])] = sent
            await asyncio.sleep(0.2)
        await asyncio.sleep(2.0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    latencies = [
        (got[revision] - at) * 1000 for got in arrivals for revision, at in written.items()
        if revision in got
    ]  # fmt: skip
    return {
        "clients": clients,
        "writes": writes,
        "events_expected": clients * writes,
        "events_received": len(latencies),
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "max_ms": round(max(latencies), 1),
        "server_kib_per_connection": round((after - before) / clients / 1024, 1),
    }


async def run(args: argparse.Namespace) -> dict[str, object]:
    async with scratch_database(args.url) as db_url:
        await seed(db_url, 1000)
        with admin_server(db_url) as (url, root):
            return await measure(url, root, args.clients, args.writes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=SERVER_URL)
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--writes", type=int, default=20)
    print_measures("stream_fanout", asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
