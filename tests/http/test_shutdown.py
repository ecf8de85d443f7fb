"""SIGTERM on a busy ``flaggery --admin`` over PostgreSQL.

Writers post bulk batches of subjects and readers ask for flags while one client stalls halfway
through an upload. On SIGTERM the server must stop accepting, finish every request it had
received, cut the stalled one after ``DRAIN_SECONDS``, close its pool and LISTEN connection
and exit 0. Each batch is then all there if it was acknowledged and absent if it was not.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import msgspec
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from flaggery.cli import DRAIN_SECONDS
from flaggery.store.database import Database
from flaggery.store.urls import libpq_dsn
from tests.dbcheck import check_invariants
from tests.http.helpers import ok
from tests.http.processes import ServerProcess, flaggery_process

pytestmark = pytest.mark.slow

BATCH = 4000
WRITERS = 4
READERS = 2
READ_SUBJECTS = 200
FIRST_BATCH_ID = 1_000_000
# Outstanding this long when SIGTERM lands, a request has surely reached the server.
RECEIVED_AFTER_SECONDS = 0.2
EXIT_MARGIN_SECONDS = 5.0


@dataclass
class Load:
    """What the clients saw: batch number -> outcome, and the reads."""

    batches: itertools.count[int] = field(default_factory=itertools.count)
    outstanding: dict[int, float] = field(default_factory=dict)
    acknowledged: dict[int, float] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)
    reads: list[int] = field(default_factory=list)
    read_errors: list[str] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)


def batch_body(batch: int) -> bytes:
    first = FIRST_BATCH_ID + batch * BATCH
    return msgspec.json.encode([{"id": first + i, "weight": 1 + i % 10} for i in range(BATCH)])


async def write(client: httpx.AsyncClient, load: Load) -> None:
    """Post batches until the server is gone; an answer other than 201 fails the test."""
    while not load.stop.is_set():
        batch = next(load.batches)
        load.outstanding[batch] = time.monotonic()
        try:
            response = await client.post("/v1/subjects", content=batch_body(batch))
        except httpx.TransportError as error:
            load.failed[batch] = repr(error)
            return
        finally:
            del load.outstanding[batch]
        assert ok(response, 201)["added"] == BATCH
        load.acknowledged[batch] = time.monotonic()


async def read(client: httpx.AsyncClient, load: Load) -> None:
    for subject_id in itertools.cycle(range(1, READ_SUBJECTS + 1)):
        if load.stop.is_set():
            return
        try:
            response = await client.get(f"/v1/subjects/{subject_id}/flags")
        except httpx.TransportError as error:
            load.read_errors.append(repr(error))
            return
        load.reads.append(response.status_code)


async def stall_upload(port: int, batch: int, sent: asyncio.Event) -> bytes:
    """Send all of a batch but its last bytes, then wait: the answer, once the server gives up."""
    body = batch_body(batch)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = f"POST /v1/subjects HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len(body)}\r\n\r\n"
    try:
        writer.write(head.encode() + body[:-100])
        await writer.drain()
        sent.set()
        return await reader.read()
    finally:
        writer.close()


async def until_refused(port: int, timeout: float = 2.0) -> None:
    """Try new connections until the listener is gone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except ConnectionRefusedError:
            return
        writer.close()
        await asyncio.sleep(0.05)
    raise AssertionError(f"port {port} still accepts connections {timeout} s after SIGTERM")


async def until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{condition} stayed false for {timeout} s"
        await asyncio.sleep(0.02)


TAIL_STATEMENT_START = "SELECT s.database_id, s.revision, s.change_id, l.revision"
"""How flaggery.store.log_tail's read of the change log begins."""


def _listening(query: str) -> bool:
    """Whether `query` is the last statement of the server's LISTEN connection."""
    return query.startswith("LISTEN") or query.lstrip().startswith(TAIL_STATEMENT_START)


async def server_backends(pg: asyncpg.Connection) -> list[str]:
    """Every other session on the test database: the server's pool and LISTEN connection."""
    rows = await pg.fetch(
        "SELECT query FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    return [row["query"] for row in rows]


async def backends_left(pg: asyncpg.Connection, timeout: float = 5.0) -> list[str]:
    """The server's sessions, once gone: a backend ends shortly after its client leaves."""
    deadline = time.monotonic() + timeout
    while (backends := await server_backends(pg)) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return backends


async def sessions_abandoned(pg: asyncpg.Connection) -> int:
    """Sessions whose client went away without saying goodbye (counted when they end)."""
    return int(
        await pg.fetchval(
            "SELECT sessions_abandoned FROM pg_stat_database WHERE datname = current_database()"
        )
    )


async def batch_sizes(url: str) -> dict[int, int]:
    """Batch number -> how many of its subjects are stored, after checking the invariants."""
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            await check_invariants(conn)
            rows = await conn.execute(
                text(
                    f"SELECT (id - {FIRST_BATCH_ID}) / {BATCH}, COUNT(*) FROM subjects "
                    f"WHERE id >= {FIRST_BATCH_ID} GROUP BY 1"
                )
            )
            return {int(batch): int(count) for batch, count in rows}
    finally:
        await db.dispose()


def prepare(server: ServerProcess) -> None:
    client = server.client
    ok(client.put("/v1/buckets", params={"amount": 8}))
    seeded = [{"id": i, "weight": 1 + i % 3} for i in range(1, READ_SUBJECTS + 1)]
    ok(client.post("/v1/subjects", json=seeded), 201)
    ok(client.post("/v1/features/checkout"), 201)
    ok(client.post("/v1/features/checkout/variants/A", params={"make_default": True}), 201)


@dataclass
class Shutdown:
    """What happened around the signal."""

    signalled: float
    exited: float
    returncode: int
    in_flight: set[int]
    stalled_answer: bytes
    abandoned_before: int


def writes_in_flight(load: Load) -> bool:
    """Some batches acknowledged, and a write received and not yet answered."""
    now = time.monotonic()
    received = [s for s in load.outstanding.values() if now - s > RECEIVED_AFTER_SECONDS]
    return len(load.acknowledged) >= 2 and len(received) >= 1


async def terminate_under_load(
    server: ServerProcess, load: Load, pg: asyncpg.Connection
) -> Shutdown:
    limits = httpx.Limits(max_connections=WRITERS + READERS)
    base_url = server.client.base_url
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as client,
        asyncio.TaskGroup() as clients,
    ):
        sent = asyncio.Event()
        stalled = clients.create_task(stall_upload(server.port, next(load.batches), sent))
        await sent.wait()
        for _ in range(WRITERS):
            clients.create_task(write(client, load))
        for _ in range(READERS):
            clients.create_task(read(client, load))
        await until(lambda: writes_in_flight(load), timeout=10)
        backends = await server_backends(pg)
        # The LISTEN connection also reads the change log (flaggery.store.log_tail), so its
        # last statement is the LISTEN or that read.
        assert any(map(_listening, backends)), backends
        abandoned_before = await sessions_abandoned(pg)

        signalled = time.monotonic()
        in_flight = {
            b for b, s in load.outstanding.items() if signalled - s > RECEIVED_AFTER_SECONDS
        }
        server.process.send_signal(signal.SIGTERM)
        await until_refused(server.port)
        assert server.process.poll() is None, "the stalled upload should hold the drain open"
        bound = DRAIN_SECONDS + EXIT_MARGIN_SECONDS
        returncode = await asyncio.to_thread(server.process.wait, bound)
        exited = time.monotonic()
        load.stop.set()
    return Shutdown(signalled, exited, returncode, in_flight, stalled.result(), abandoned_before)


async def test_sigterm_drains_in_flight_requests_then_exits(
    clean_postgres: str, tmp_path: Path
) -> None:
    load = Load()
    pg = await asyncpg.connect(libpq_dsn(make_url(clean_postgres)))
    try:
        with flaggery_process(["--admin", "--db-url", clean_postgres], tmp_path) as server:
            prepare(server)
            shutdown = await terminate_under_load(server, load, pg)
        assert shutdown.returncode == 0, server.log_path.read_text()
        elapsed = shutdown.exited - shutdown.signalled
        assert DRAIN_SECONDS <= elapsed <= DRAIN_SECONDS + EXIT_MARGIN_SECONDS

        # Drained: every write the server had received was answered; the stalled one was cut.
        assert shutdown.in_flight <= set(load.acknowledged), (shutdown.in_flight, load.failed)
        assert not shutdown.stalled_answer.startswith(b"HTTP/1.1 2"), shutdown.stalled_answer
        assert load.reads and set(load.reads) == {200}

        # All or nothing, and acknowledged means stored.
        stored = await batch_sizes(clean_postgres)
        assert set(stored.values()) <= {BATCH}, f"half-applied batches: {stored}"
        assert set(stored) == set(load.acknowledged), (sorted(stored), sorted(load.acknowledged))

        # The pool and the LISTEN connection were closed by the server, not dropped at its exit.
        assert await backends_left(pg) == []
        assert await sessions_abandoned(pg) == shutdown.abandoned_before
    finally:
        await pg.close()
