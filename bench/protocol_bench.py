"""The read deadline's cost per request, in process: uvicorn's httptools protocol against
flaggery's ReadTimeoutProtocol, fed the same keep-alive requests over a fake transport.

    python bench/protocol_bench.py [--requests 20000] [--rounds 5]

wrk through real sockets (bench/http_bench.py) measures the whole stack but moves by tens of
percent on a busy shared machine; this isolates the protocol: each round parses and answers
``--requests`` requests with each class, in alternating order, on one event loop, and the
best round of each is compared, in CPU seconds of this process (so other load on the
machine moves it less than wall time). The app sends a constant body, like the raw app of
bench/http_bench.py.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import print_measures

from flaggery.http.protocol import ReadTimeoutProtocol

REQUEST = b"GET /v1/subjects/42/flags HTTP/1.1\r\nHost: bench\r\n\r\n"
BODY = b'{"flags":{"f":"A"}}'


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": BODY})


class Transport(asyncio.Transport):
    """Counts what the protocol writes; never closes, never pauses."""

    def __init__(self) -> None:
        super().__init__()
        self.written = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += 1

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 8000) if name in ("sockname", "peername") else default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def make(kind: str, config: Config) -> tuple[asyncio.Protocol, Transport]:
    state = ServerState()
    protocol: asyncio.Protocol
    if kind == "uvicorn":
        protocol = HttpToolsProtocol(config, state, {})
    else:
        protocol = ReadTimeoutProtocol(config, state, {}, read_timeout=60.0)
    transport = Transport()
    protocol.connection_made(transport)
    return protocol, transport


async def requests_per_second(kind: str, config: Config, count: int) -> float:
    protocol, transport = make(kind, config)
    started = time.process_time()  # CPU time: other processes on the machine do not count
    for _ in range(count):
        protocol.data_received(REQUEST)
        await asyncio.sleep(0)  # the request's task runs and answers
        await asyncio.sleep(0)
    elapsed = time.process_time() - started
    assert transport.written >= count, f"{kind}: only {transport.written} responses"
    protocol.connection_lost(None)
    return count / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    config = Config(app, http="httptools", log_level="warning", access_log=False)
    config.load()
    best = {"uvicorn": 0.0, "flaggery": 0.0}
    for round_number in range(args.rounds):
        order = list(best) if round_number % 2 else list(reversed(best))  # no order effect
        for kind in order:
            best[kind] = max(best[kind], await requests_per_second(kind, config, args.requests))
    print_measures(
        "protocol",
        {
            "uvicorn_req_per_s": round(best["uvicorn"]),
            "flaggery_req_per_s": round(best["flaggery"]),
            "ratio": round(best["flaggery"] / best["uvicorn"], 3),
        },
    )


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
