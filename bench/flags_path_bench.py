"""Where a flags request's time goes, in process: the whole flaggery stack (its protocol, app,
fast path, snapshot) against uvicorn's protocol and the raw constant app of http_bench.py.

    python bench/flags_path_bench.py [--requests 20000] [--rounds 5] [--metrics] [--profile]

bench/http_bench.py measures through sockets with wrk, which moves by tens of percent on a
busy shared machine and cannot say which part of the server costs what. Here both stacks are
fed the same keep-alive requests (random subject ids of the benchmark dataset, seeded into a
temporary SQLite file) over the fake transport of protocol_bench.py, in alternating rounds, in
CPU seconds of this process. The ratio excludes the kernel and wrk, which cost both servers
the same, so it is lower than http_bench's. ``--profile`` prints cProfile's top functions of
one more flaggery round.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_bench import raw_app
from protocol_bench import Transport
from report import print_measures
from seed import SUBJECTS, seed

from flaggery.http.app import create_app
from flaggery.http.protocol import ReadTimeoutProtocol
from flaggery.settings import Settings

READ_TIMEOUT = 60.0


def requests(count: int) -> list[bytes]:
    rng = random.Random(3)
    line = b"GET /v1/subjects/%d/flags HTTP/1.1\r\nHost: bench\r\n\r\n"
    return [line % rng.randint(1, SUBJECTS) for _ in range(count)]


def protocol_for(app: Any, flaggery: bool) -> tuple[asyncio.Protocol, Transport]:
    config = Config(app, http="httptools", log_level="warning", access_log=False, lifespan="off")
    config.load()
    protocol: asyncio.Protocol
    if flaggery:
        protocol = ReadTimeoutProtocol(config, ServerState(), {}, read_timeout=READ_TIMEOUT)
    else:
        protocol = HttpToolsProtocol(config, ServerState(), {})
    transport = Transport()
    protocol.connection_made(transport)
    return protocol, transport


async def requests_per_second(app: Any, flaggery: bool, batch: list[bytes]) -> float:
    """Requests answered per CPU second, one keep-alive connection, one request at a time."""
    protocol, transport = protocol_for(app, flaggery)
    started = time.process_time()
    for request in batch:
        protocol.data_received(request)
        await asyncio.sleep(0)  # the request's task runs and answers
        await asyncio.sleep(0)
    elapsed = time.process_time() - started
    assert transport.written >= len(batch), f"only {transport.written} responses"
    protocol.connection_lost(None)
    return len(batch) / elapsed


async def compare(app: Any, args: argparse.Namespace) -> None:
    batch = requests(args.requests)
    rates: dict[str, list[float]] = {"raw": [], "flaggery": []}
    for round_number in range(args.rounds):
        order = [False, True] if round_number % 2 else [True, False]  # no order effect
        for flaggery in order:
            rate = await requests_per_second(app if flaggery else raw_app, flaggery, batch)
            rates["flaggery" if flaggery else "raw"].append(rate)
    median = {name: statistics.median(values) for name, values in rates.items()}
    print_measures(
        "flags_path",
        {
            "metrics": args.metrics,
            "raw_req_per_cpu_s": round(median["raw"]),
            "flaggery_req_per_cpu_s": round(median["flaggery"]),
            "raw_us_per_request": round(1e6 / median["raw"], 1),
            "flaggery_us_per_request": round(1e6 / median["flaggery"], 1),
            "ratio": round(median["flaggery"] / median["raw"], 3),
        },
    )
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        await requests_per_second(app, True, batch)
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(args.profile_lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--metrics", action="store_true", help="Prometheus on")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--profile-lines", type=int, default=25)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        url = f"sqlite+aiosqlite:///{workdir}/bench.db"
        await seed(url)
        settings = Settings.from_env(
            {}, db_url=url, admin_mode=False, enable_prometheus=args.metrics
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            await compare(app, args)


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
