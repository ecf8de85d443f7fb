"""Write bursts: acknowledged single-subject writes per second against one admin server.

    python bench/write_burst_bench.py [--duration 30] [--clients 16] [--workers 1]

Seeds the benchmark dataset (bench/seed.py: 10,000 subjects, 100 buckets) into a scratch
PostgreSQL database (dropped at the end), starts one admin server (``flaggery --admin``, one
worker by default), and for ``--duration`` seconds per kind drives it from ``--clients``
concurrent clients (httpx, one keep-alive connection each, each sending its next request when
the previous one is answered):

  - new:    POST /v1/subjects/{id}?weight=w, ids never used before;
  - weight: PUT /v1/subjects/{id}?weight=w on seeded subjects, every write a real change;
  - group:  POST and DELETE /v1/groups/burst/subjects/{id}, joins and leaves alternating.

Each client owns its own subjects, so the state each acknowledged write leaves is known. A
write is acknowledged by its 2xx answer, which carries ``X-Flaggery-Revision``. After each kind
the benchmark VERIFIES against the database: every acknowledged write has its own revision,
the change log holds a row at that revision with the write's operation and subject, and the
tables hold what the last acknowledged write of each subject left (subject, weight, bucket,
membership). It also counts the transactions that committed them (PostgreSQL's ``xmin`` of the
change-log rows): revisions per commit is the batch size the group commit reached.

Prints a table per kind and one JSON line. Target (issue 14): >= 1,000 acknowledged writes/s
for each kind, from 16 clients, over 30 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import msgspec
import psutil
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_bench import flaggery_command, free_port, server
from report import print_measures
from seed import SERVER_URL, SUBJECTS, scratch_database, seed

from flaggery.store.urls import libpq_dsn

GROUP = "burst"
REQUEST_TIMEOUT_SECONDS = 30.0


@dataclass
class Ack:
    """One acknowledged write: what was sent, and the revision it answered with."""

    subject: int
    value: int
    """The weight (new, weight) or 1 for a join and 0 for a leave (group)."""
    revision: int
    bucket: int | None = None


@dataclass
class Outcome:
    acks: list[Ack] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)


Request = Callable[[httpx.AsyncClient, int, int], Awaitable[Ack | str]]
"""(client, subject, n-th write of that client) -> the Ack, or why it failed."""


def _revision(response: httpx.Response) -> int:
    return int(response.headers["x-flaggery-revision"])


async def new_subject(client: httpx.AsyncClient, subject: int, n: int) -> Ack | str:
    weight = 1 + subject % 9
    response = await client.post(f"/v1/subjects/{subject}", params={"weight": weight})
    if response.status_code != 201:
        return f"{response.status_code} {response.text[:80]}"
    return Ack(subject, weight, _revision(response), response.json()["bucket_id"])


async def weight_change(client: httpx.AsyncClient, subject: int, n: int) -> Ack | str:
    weight = 20 + n  # never the seeded weight (1-10) nor the previous write's
    response = await client.put(f"/v1/subjects/{subject}", params={"weight": weight})
    if response.status_code != 200:
        return f"{response.status_code} {response.text[:80]}"
    return Ack(subject, weight, _revision(response))


async def join_or_leave(client: httpx.AsyncClient, subject: int, n: int) -> Ack | str:
    joins = n % 2 == 0  # a client visits each of its subjects twice per cycle: join, then leave
    method = "POST" if joins else "DELETE"
    response = await client.request(method, f"/v1/groups/{GROUP}/subjects/{subject}")
    if response.status_code != 200:
        return f"{response.status_code} {response.text[:80]}"
    return Ack(subject, int(joins), _revision(response))


@dataclass(frozen=True)
class Kind:
    name: str
    operations: tuple[str, ...]
    request: Request
    subjects: Callable[[int, int], range]
    """(client index, clients) -> the subjects that client writes, in order, cycled."""
    repeat: int = 1
    """How many consecutive writes go to the same subject before moving on."""


def _seeded(client: int, clients: int) -> range:
    return range(client + 1, SUBJECTS + 1, clients)


def _fresh(client: int, clients: int) -> range:
    first = SUBJECTS + 1 + client  # new ids interleaved, so the snapshot's index stays dense
    return range(first, first + 100_000_000 * clients, clients)


KINDS = (
    Kind("new", ("add_subject",), new_subject, _fresh),
    Kind("weight", ("set_subject_weight",), weight_change, _seeded),
    Kind("group", ("add_subject_to_group", "rm_subject_from_group"), join_or_leave, _seeded, 2),
)


async def drive(base: str, kind: Kind, clients: int, duration: float) -> Outcome:
    outcome = Outcome()
    deadline = time.monotonic() + duration

    async def one_client(index: int) -> None:
        subjects = kind.subjects(index, clients)
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(
            base_url=base, limits=limits, timeout=REQUEST_TIMEOUT_SECONDS
        ) as client:
            n = 0
            while time.monotonic() < deadline:
                subject = subjects[(n // kind.repeat) % len(subjects)]
                started = time.perf_counter()
                result = await kind.request(client, subject, n)
                outcome.latencies_ms.append((time.perf_counter() - started) * 1000)
                if isinstance(result, Ack):
                    outcome.acks.append(result)
                else:
                    outcome.failures[result] = outcome.failures.get(result, 0) + 1
                n += 1

    await asyncio.gather(*(one_client(i) for i in range(clients)))
    return outcome


async def verify(dsn: str, kind: Kind, acks: list[Ack]) -> dict[str, object]:
    """Check every acknowledged write against the database; raise AssertionError if one is
    missing. Returns the counts checked and the transactions that committed them."""
    revisions = [ack.revision for ack in acks]
    assert len(set(revisions)) == len(revisions), "two acknowledged writes share a revision"
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT revision, operation, payload, xmin::text::bigint AS tx FROM change_log"
            " WHERE revision = ANY($1::bigint[])",
            revisions,
        )
        logged = {row["revision"]: row for row in rows}
        missing = [ack for ack in acks if ack.revision not in logged]
        assert not missing, (
            f"{len(missing)} acknowledged writes not in the change log: {missing[:3]}"
        )
        for ack in acks:
            row = logged[ack.revision]
            assert row["operation"] in kind.operations, (ack, row["operation"])
            facts = msgspec.json.decode(row["payload"])
            assert any(f.get("id") == ack.subject for f in facts), (ack, row["payload"])
        last = {ack.subject: ack for ack in sorted(acks, key=lambda a: a.revision)}
        await _verify_state(connection, kind, last)
    finally:
        await connection.close()
    transactions = len({row["tx"] for row in rows})
    return {
        "verified_writes": len(acks),
        "verified_subjects": len(last),
        "commits": transactions,
        "writes_per_commit": round(len(acks) / max(transactions, 1), 1),
    }


async def _verify_state(connection: asyncpg.Connection, kind: Kind, last: dict[int, Ack]) -> None:
    ids = sorted(last)
    if kind.name == "group":
        members = await connection.fetch(
            'SELECT subject_id FROM group_members WHERE "group" = $1', GROUP
        )
        joined = {row["subject_id"] for row in members}
        wrong = [i for i in ids if (i in joined) != bool(last[i].value)]
        assert not wrong, f"membership differs from the last acknowledged write: {wrong[:5]}"
        return
    rows = await connection.fetch(
        "SELECT id, weight, bucket_id FROM subjects WHERE id = ANY($1::bigint[])", ids
    )
    found = {row["id"]: row for row in rows}
    assert len(found) == len(ids), f"{len(ids) - len(found)} acknowledged subjects are missing"
    for subject, ack in last.items():
        row = found[subject]
        assert row["weight"] == ack.value, (ack, dict(row))
        assert ack.bucket is None or row["bucket_id"] == ack.bucket, (ack, dict(row))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the server process and its workers so far."""
    parent = psutil.Process(pid)
    return sum(sum(p.cpu_times()[:2]) for p in (parent, *parent.children(recursive=True)))


def summarize(outcome: Outcome, duration: float, cpu: float) -> dict[str, object]:
    latencies = sorted(outcome.latencies_ms)
    acknowledged = len(outcome.acks)
    return {
        "acknowledged": acknowledged,
        "writes_per_s": round(acknowledged / duration),
        "failed": sum(outcome.failures.values()),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 2),
        "server_cpu_ms_per_write": round(cpu * 1000 / max(acknowledged, 1), 2),
    }


async def run(args: argparse.Namespace) -> dict[str, object]:
    result: dict[str, object] = {"clients": args.clients, "duration_s": args.duration}
    async with scratch_database(args.url) as url:
        await seed(url)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base) as admin:
            env = {"FLAGGERY_DB_URL": url, "FLAGGERY_ADMIN_MODE": "true"}
            command = flaggery_command(port, args.workers)
            with server(command, env, base + "/readyz") as process:
                (await admin.post(f"/v1/groups/{GROUP}")).raise_for_status()
                for kind in KINDS:
                    if args.kinds and kind.name not in args.kinds:
                        continue
                    cpu = cpu_seconds(process.pid)
                    outcome = await drive(base, kind, args.clients, args.duration)
                    cpu = cpu_seconds(process.pid) - cpu
                    measures = summarize(outcome, args.duration, cpu)
                    print(f"{kind.name}: {measures}", flush=True)
                    if outcome.failures:
                        print(f"  failures: {outcome.failures}", flush=True)
                    measures |= await verify(libpq_dsn(make_url(url)), kind, outcome.acks)
                    result |= {f"{kind.name}_{key}": value for key, value in measures.items()}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=SERVER_URL, help="a PostgreSQL server URL")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per kind")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1, help="admin server worker processes")
    parser.add_argument("--kinds", nargs="*", choices=[k.name for k in KINDS], default=[])
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        print_measures("write_burst", asyncio.run(run(args)))


if __name__ == "__main__":
    main()
