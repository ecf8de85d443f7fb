"""Fan-out of GET /v1/stream: many concurrent clients on one server with 2 workers.

    python bench/stream_fanout_bench.py                     # 2,000 connections, 20 writes
    python bench/stream_fanout_bench.py --client httpx --client-processes 1   # the old client

An admin server (PostgreSQL scratch database, 2 workers) gets ``--clients`` stream connections,
spread over ``--client-processes`` client processes; then ``--writes`` writes are made one at a
time through REST. For each write, every client's arrival time of its event is compared with the
moment the write was sent (so the latency includes the write itself: the server publishes before
it answers). Every client must receive every event: the count is printed.

Two clients separate the server's share of the latency from the client's: ``raw`` (default)
reads each stream with a bare asyncio protocol that timestamps a chunk as soon as its bytes
arrive and only scans it for ``id:`` lines; ``httpx`` parses every stream as an application
would (``aiter_lines``), which in one process costs more than the server does.

Memory per connection: the growth of the server processes' RSS (psutil) from before the clients
connected to after, divided by the clients. Target (issue 11): every client gets every event,
p99 <= 250 ms at 2,000 connections.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import re
import statistics
import time
from collections.abc import Iterator
from functools import partial
from multiprocessing.connection import Connection
from urllib.parse import urlsplit

import httpx
import psutil
from http_bench import flaggery_command, free_port, server
from report import percentile, print_measures
from seed import SERVER_URL, scratch_database, seed

Arrivals = dict[int, float]
"""revision -> time.time() its event reached one client."""


@contextlib.contextmanager
def admin_server(db_url: str) -> Iterator[tuple[str, psutil.Process]]:
    """An admin `flaggery` with 2 workers on ``db_url``, ready: its URL and its process."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [*flaggery_command(port, 2), "--admin", "--db-url", db_url]
    with server(command, {}, url + "/readyz") as process:
        yield url, psutil.Process(process.pid)


def server_rss(root: psutil.Process) -> int:
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])


_EVENT_ID = re.compile(rb"^id: (\d+)\r?$", re.M)


class RawStream(asyncio.Protocol):
    """One GET /v1/stream over a bare socket: notes when each event id's bytes arrive."""

    def __init__(self, host: str, started: asyncio.Future[None]) -> None:
        self.request = f"GET /v1/stream HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
        self.started = started
        self.arrivals: Arrivals = {}
        self.tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        data = self.tail + data
        cut = data.rfind(b"\n") + 1  # a line split across reads waits for its end
        self.tail = data[cut:]
        if not self.started.done():
            if not data.startswith(b"HTTP/1.1 200"):
                self.started.set_exception(RuntimeError(data[:200].decode(errors="replace")))
                return
            self.started.set_result(None)
        for revision in _EVENT_ID.findall(data, 0, cut):
            self.arrivals[int(revision)] = now

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.started.done():
            self.started.set_exception(exc or ConnectionError("closed before the response"))


async def raw_clients(url: str, count: int) -> tuple[list[Arrivals], list[asyncio.Transport]]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    loop = asyncio.get_running_loop()
    streams, transports = [], []
    for _ in range(count):
        started: asyncio.Future[None] = loop.create_future()
        opened = partial(RawStream, parts.netloc, started)
        transport, stream = await loop.create_connection(opened, parts.hostname, parts.port)
        await started
        streams.append(stream)
        transports.append(transport)
    return [stream.arrivals for stream in streams], transports


async def httpx_listen(
    http: httpx.AsyncClient, arrivals: Arrivals, connected: asyncio.Queue[None]
) -> None:
    async with http.stream("GET", "/v1/stream") as response:
        response.raise_for_status()
        connected.put_nowait(None)
        async for line in response.aiter_lines():
            if line.startswith("id: "):
                arrivals[int(line[4:])] = time.time()


async def client_main(url: str, count: int, kind: str, pipe: Connection) -> None:
    """One client process: open ``count`` streams, say "ready", note arrivals until told to
    stop, then send them back."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_reader(pipe.fileno(), stop.set)
    if kind == "raw":
        arrivals, transports = await raw_clients(url, count)
        pipe.send("ready")
        await stop.wait()
        for transport in transports:
            transport.close()
    else:
        limits = httpx.Limits(max_connections=count + 10, max_keepalive_connections=0)
        timeout = httpx.Timeout(30.0, read=None)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as http:
            arrivals = [{} for _ in range(count)]
            connected: asyncio.Queue[None] = asyncio.Queue()
            tasks = [asyncio.create_task(httpx_listen(http, got, connected)) for got in arrivals]
            for _ in range(count):
                await connected.get()
            pipe.send("ready")
            await stop.wait()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    pipe.recv()  # the "stop" that woke us
    pipe.send(arrivals)


def client_process(url: str, count: int, kind: str, pipe: Connection) -> None:
    asyncio.run(client_main(url, count, kind, pipe))


async def measure(url: str, root: psutil.Process, args: argparse.Namespace) -> dict[str, object]:
    clients, processes = args.clients, args.client_processes
    before = server_rss(root)
    context = multiprocessing.get_context("spawn")
    pipes, workers = [], []
    for index in range(processes):
        ours, theirs = context.Pipe()
        share = clients // processes + (index < clients % processes)
        worker = context.Process(target=client_process, args=(url, share, args.client, theirs))
        worker.start()
        pipes.append(ours)
        workers.append(worker)
    try:
        for pipe in pipes:
            assert await asyncio.to_thread(pipe.recv) == "ready"
        await asyncio.sleep(1.0)
        after = server_rss(root)
        written: dict[int, float] = {}
        async with httpx.AsyncClient(base_url=url) as http:
            for n in range(args.writes):
                sent = time.time()  # events may arrive before the write's own response does
                response = await http.post(f"/v1/features/fanout_{n}")
                written[int(response.headers["x-flaggery-revision"])] = sent
                await asyncio.sleep(0.2)
        await asyncio.sleep(2.0)
        arrivals: list[Arrivals] = []
        for pipe in pipes:
            pipe.send("stop")
            arrivals.extend(await asyncio.to_thread(pipe.recv))
    finally:
        for worker in workers:
            worker.join(30)
            if worker.is_alive():
                worker.kill()
    latencies = [
        (got[revision] - at) * 1000 for got in arrivals for revision, at in written.items()
        if revision in got
    ]  # fmt: skip
    return {
        "client": args.client,
        "client_processes": processes,
        "clients": clients,
        "writes": args.writes,
        "events_expected": clients * args.writes,
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
            return await measure(url, root, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=SERVER_URL)
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--writes", type=int, default=20)
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw")
    parser.add_argument("--client-processes", type=int, default=2)
    print_measures("stream_fanout", asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
