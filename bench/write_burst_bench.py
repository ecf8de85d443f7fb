"""Write bursts: acknowledged single-subject writes per second against one admin server.

    python bench/write_burst_bench.py [--duration 30] [--connections 16] [--workers 1]

Seeds the benchmark dataset (bench/seed.py: 10,000 subjects, 100 buckets) into a scratch
PostgreSQL database (dropped at the end), starts one admin server (``flaggery`` in admin mode,
one worker by default), and for ``--duration`` seconds per kind drives it with wrk from
``--connections`` concurrent keep-alive connections (each sends its next request when the
previous one is answered):

  - new:    POST /v1/subjects/{id}?weight=w, ids never used before;
  - weight: PUT /v1/subjects/{id}?weight=w over the seeded subjects, every write a change;
  - group:  POST then DELETE /v1/groups/burst/subjects/{id}: a pass of joins over the seeded
            subjects, then a pass of leaves (a subject's join and leave are never in flight
            together, so none is refused).

wrk (C, with a Lua script) rather than a Python client: at a thousand requests a second a
Python HTTP client costs as much CPU as the server, and this machine has two cores.

A write is acknowledged by its 2xx answer; the Lua script records the ``X-Flaggery-Revision``
of every one (and, for new subjects, the id and bucket the body names). After each kind the
benchmark VERIFIES against the database: the acknowledged revisions are distinct; the change
log holds a row at each of them with the kind's operation and a fact for one subject; the
change log holds at most ``--connections`` more rows of that operation than were acknowledged
(writes committed while wrk stopped); every acknowledged new subject is in the subjects table
with its weight and the bucket it was told; and every subject's row (weight, membership) is
what its last change-log fact says. It also counts the transactions that committed the
acknowledged writes (PostgreSQL's ``xmin`` of their change-log rows): writes per commit is
the batch size the group commit reached.

Prints a table and one JSON line. Target (issue 14): >= 1,000 acknowledged writes/s for
each kind, from 16 connections, over 30 s. The machine's load average is printed with it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import psutil
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_bench import flaggery_command, free_port, server
from report import parse_wrk, print_measures
from seed import SERVER_URL, SUBJECTS, scratch_database, seed

from flaggery.engine.model import SubjectFact, decode_facts
from flaggery.store.urls import libpq_dsn

GROUP = "burst"
ACKS_VARIABLE = "WRITE_BURST_ACKS"

# One wrk thread: its Lua state numbers the requests. `response` keeps what each 2xx answer
# says; `done` writes it out, one line per acknowledged write: revision [subject bucket].
# (Globals: `thread:get` reads a thread's globals.)
LUA = """
n = 0
acks = {}
failures = 0
threads = {}

function setup(thread)
  table.insert(threads, thread)
end

request = function()
  n = n + 1
  %(request)s
end

response = function(status, headers, body)
  if status >= 200 and status < 300 then
    local line = headers["X-Flaggery-Revision"] or headers["x-flaggery-revision"]
    %(body)s
    acks[#acks + 1] = line
  else
    failures = failures + 1
  end
end

function done(summary, latency, requests)
  local out = io.open(os.getenv("%(variable)s"), "w")
  for _, thread in ipairs(threads) do
    for _, line in ipairs(thread:get("acks")) do
      out:write(line, "\\n")
    end
    out:write("failures ", thread:get("failures"), "\\n")
  end
  out:close()
end
"""


@dataclass(frozen=True)
class Kind:
    name: str
    operations: tuple[str, ...]
    request: str
    """Lua: return the n-th request (n counts from 1)."""
    body: str = ""
    """Lua: extend `line` from the answer's `body`."""


NEW_FIRST_ID = SUBJECTS + 1
KINDS = (
    Kind(
        "new",
        ("add_subject",),
        f"local id = {NEW_FIRST_ID} + n - 1\n"
        '  return wrk.format("POST", "/v1/subjects/" .. id .. "?weight=" .. (1 + id % 9))',
        'line = line .. " " .. body:match(\'"subject_id":(%d+)\') .. " " .. '
        "body:match('\"bucket_id\":(%d+)')",
    ),
    Kind(
        "weight",
        ("set_subject_weight",),
        f"local id = (n - 1) % {SUBJECTS} + 1\n"
        '  return wrk.format("PUT", "/v1/subjects/" .. id .. "?weight=" .. (20 + n))',
    ),
    Kind(
        "group",
        ("add_subject_to_group", "rm_subject_from_group"),
        f"local id = (n - 1) % {SUBJECTS} + 1\n"
        f"  local method = (math.floor((n - 1) / {SUBJECTS}) % 2 == 0) and 'POST' or 'DELETE'\n"
        f'  return wrk.format(method, "/v1/groups/{GROUP}/subjects/" .. id)',
    ),
)


@dataclass(frozen=True)
class Ack:
    revision: int
    subject: int | None = None
    bucket: int | None = None


def run_wrk(
    base: str, kind: Kind, args: argparse.Namespace, workdir: Path
) -> tuple[dict[str, float], list[Ack], int]:
    """wrk's report, the acknowledged writes, and the number of non-2xx answers."""
    script = workdir / f"{kind.name}.lua"
    script.write_text(LUA % {"request": kind.request, "body": kind.body, "variable": ACKS_VARIABLE})
    acks_path = workdir / f"{kind.name}.acks"
    command = [
        *("wrk", "-t", "1", "-c", str(args.connections), "-d", f"{args.duration}s"),
        *("--timeout", "10s", "--latency", "-s", str(script), base),
    ]
    env = {**os.environ, ACKS_VARIABLE: str(acks_path)}
    output = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    acks, failures = [], 0
    for line in acks_path.read_text().splitlines():
        fields = line.split()
        if fields[0] == "failures":
            failures += int(fields[1])
        else:
            acks.append(Ack(*map(int, fields)))
    return parse_wrk(output), acks, failures


async def head_revision(dsn: str) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        return int(await connection.fetchval("SELECT revision FROM flaggery_state"))
    finally:
        await connection.close()


async def verify(
    dsn: str, kind: Kind, acks: list[Ack], after: int, connections: int
) -> dict[str, object]:
    """Check the acknowledged writes against the database (see the module docstring); raise
    AssertionError on the first that does not hold. ``after``: the head before the kind ran.
    Returns what was checked."""
    revisions = [ack.revision for ack in acks]
    assert len(set(revisions)) == len(revisions), "two acknowledged writes share a revision"
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT revision, operation, payload, xmin::text::bigint AS tx FROM change_log"
            " WHERE operation = ANY($1::text[]) AND revision > $2 ORDER BY revision",
            list(kind.operations),
            after,
        )
        logged = {row["revision"]: row for row in rows}
        missing = [ack for ack in acks if ack.revision not in logged]
        assert not missing, (
            f"{len(missing)} acknowledged writes not in the change log: {missing[:3]}"
        )
        extra = len(rows) - len(acks)
        assert 0 <= extra <= connections, f"{extra} logged writes beyond the acknowledged ones"
        last: dict[int, SubjectFact] = {}
        for row in rows:
            (fact,) = decode_facts(row["payload"])
            assert isinstance(fact, SubjectFact), row
            last[fact.id] = fact
        for ack in acks:
            if ack.subject is not None:
                fact = last[ack.subject]
                assert fact.subject is not None and fact.subject.bucket == ack.bucket, (ack, fact)
        await _verify_tables(connection, kind, last)
        commits = len({logged[r]["tx"] for r in revisions})
    finally:
        await connection.close()
    return {
        "verified_writes": len(acks),
        "verified_subjects": len(last),
        "committed_unacknowledged": extra,
        "commits": commits,
        "writes_per_commit": round(len(acks) / max(commits, 1), 1),
    }


async def _verify_tables(
    connection: asyncpg.Connection, kind: Kind, last: dict[int, SubjectFact]
) -> None:
    """Every subject's row is what its last change-log fact says."""
    ids = sorted(last)
    rows = await connection.fetch(
        "SELECT id, weight, bucket_id FROM subjects WHERE id = ANY($1::bigint[])", ids
    )
    found = {row["id"]: row for row in rows}
    members = await connection.fetch(
        'SELECT subject_id FROM group_members WHERE "group" = $1', GROUP
    )
    joined = {row["subject_id"] for row in members}
    for sid, fact in last.items():
        assert fact.subject is not None and sid in found, (sid, fact)
        row = found[sid]
        assert (row["weight"], row["bucket_id"]) == (fact.subject.weight, fact.subject.bucket)
        assert (sid in joined) == (GROUP in fact.subject.groups), (sid, fact)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the server process and its workers so far."""
    parent = psutil.Process(pid)
    return sum(sum(p.cpu_times()[:2]) for p in (parent, *parent.children(recursive=True)))


async def run(args: argparse.Namespace) -> dict[str, object]:
    result: dict[str, object] = {"connections": args.connections, "duration_s": args.duration}
    async with scratch_database(args.url) as url:
        await seed(url)
        dsn = libpq_dsn(make_url(url))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {"FLAGGERY_DB_URL": url, "FLAGGERY_ADMIN_MODE": "true"}
        command = flaggery_command(port, args.workers)
        with (
            tempfile.TemporaryDirectory() as workdir,
            server(command, env, base + "/readyz") as process,
        ):
            async with httpx.AsyncClient(base_url=base) as admin:
                (await admin.post(f"/v1/groups/{GROUP}")).raise_for_status()
            for kind in KINDS:
                if args.kinds and kind.name not in args.kinds:
                    continue
                before, cpu = await head_revision(dsn), cpu_seconds(process.pid)
                report, acks, failures = await asyncio.to_thread(
                    run_wrk, base, kind, args, Path(workdir)
                )
                cpu = cpu_seconds(process.pid) - cpu
                measures: dict[str, object] = {
                    "acknowledged": len(acks),
                    "writes_per_s": round(len(acks) / args.duration),
                    "failed": failures + int(report["socket_errors"]),
                    "p50_ms": report.get("p50_ms"),
                    "p99_ms": report.get("p99_ms"),
                    "server_cpu_ms_per_write": round(cpu * 1000 / max(len(acks), 1), 2),
                    "load_average_1m": round(os.getloadavg()[0], 1),
                }
                print(f"{kind.name}: {measures}", flush=True)
                measures |= await verify(dsn, kind, acks, before, args.connections)
                result |= {f"{kind.name}_{key}": value for key, value in measures.items()}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=SERVER_URL, help="a PostgreSQL server URL")
    parser.add_argument("--duration", type=int, default=30, help="seconds per kind")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1, help="admin server worker processes")
    parser.add_argument("--kinds", nargs="*", choices=[k.name for k in KINDS], default=[])
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install -y wrk)")
    started = time.monotonic()
    result = asyncio.run(run(args))
    result["wall_s"] = round(time.monotonic() - started)
    print_measures("write_burst", result)


if __name__ == "__main__":
    main()
