"""Flags-route latency at a fixed rate while the admin writes, and around each snapshot swap.

    python bench/fixed_rate_bench.py [--subjects 100000] [--fraction 0.8] [--rate REQ_PER_S]
        [--duration 30] [--changes-per-second 50] [--swap-duration 20] [--swaps-per-second 2]

Seeds the benchmark dataset (bench/seed.py) with ``--subjects`` subjects into a scratch
PostgreSQL database (dropped at the end), starts a read-only replica (2 workers) and an admin
server (1 worker) on it, and measures in three steps:

1. maximum: the replica's flags route with wrk (16 connections, random subjects, as
   bench/http_bench.py) for ``--max-duration`` s; the fixed rate is ``--fraction`` of it
   (or ``--rate``, to rerun at a known rate);
2. load: that rate from the fixed-rate generator (bench/fixed_rate.py: each request timed from
   when it was due, no coordinated omission) for ``--duration`` s, while bench/change_writer.py
   writes ``--changes-per-second`` of every kind to the admin server. Prints p50/p99/p99.9/max,
   the generator's own lag (it says when it fell behind), the writer's achieved rate, and per
   change the worst latency of the requests due within +-50 ms of its acknowledgement;
3. swaps: the same rate with configuration changes only, ``--swaps-per-second`` of them (so
   the windows around them do not overlap), and the worst latency around each change against
   the worst in windows of the same width midway between changes: a swap that stalls the
   workers shows as the first being higher.

Latencies are "less lag" (the generator's own sending delay taken out; the raw ones are in the
JSON). Targets (issue 14): p99 <= 2 ms and p99.9 <= 5 ms under load; no stall around swaps.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import shutil
import sys
import tempfile
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from change_writer import CONFIGURATION_KINDS, KINDS, Change, ChangeWriter
from fixed_rate import Plan, Result, percentile, run
from http_bench import WRK_SCRIPT, flaggery_command, free_port, server
from report import parse_wrk
from seed import scratch_database, seed

WINDOW_SECONDS = 0.05
BEHIND_SECONDS = 0.002  # past epoll's whole-millisecond rounding: the generator was late
PATHS = 65_536


def main() -> None:
    args = arguments()
    loads = [os.getloadavg()[0]]
    result = asyncio.run(measure(args))
    loads.append(os.getloadavg()[0])
    report(result, args, loads)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--subjects", type=int, default=100_000)
    parser.add_argument("--max-duration", type=int, default=10, help="seconds of wrk")
    parser.add_argument("--fraction", type=float, default=0.8, help="of the maximum")
    parser.add_argument("--rate", type=float, help="requests/s (instead of measuring)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds under load")
    parser.add_argument("--changes-per-second", type=float, default=50.0)
    parser.add_argument("--swap-duration", type=float, default=20.0)
    parser.add_argument("--swaps-per-second", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--processes", type=int, default=1, help="generator processes")
    args = parser.parse_args()
    if args.rate is None and shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install -y wrk); or give --rate")
    return args


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    async with scratch_database(args.postgres_url) as db_url:
        print(f"seeding {args.subjects:,} subjects into {make_url(db_url).database} ...")
        await seed(db_url, args.subjects)
        ports = {"replica": free_port(), "admin": free_port()}
        with contextlib.ExitStack() as stack:
            for name, workers, admin in (("replica", 2, "false"), ("admin", 1, "true")):
                env = {"FLAGGERY_DB_URL": db_url, "FLAGGERY_ADMIN_MODE": admin}
                probe = f"http://127.0.0.1:{ports[name]}/readyz"
                stack.enter_context(server(flaggery_command(ports[name], workers), env, probe))
            admin_url = f"http://127.0.0.1:{ports['admin']}"
            maximum = None if args.rate else await max_throughput(ports["replica"], args)
            rate = args.rate if maximum is None else args.fraction * maximum["rps"]
            print(f"fixed rate: {rate:,.0f} req/s", flush=True)
            paths = random_paths(args.subjects)
            plan = Plan("127.0.0.1", ports["replica"], paths, rate, args.duration,
                        args.connections, args.processes)  # fmt: skip
            writer = ChangeWriter(admin_url, args.subjects, args.changes_per_second)
            load = await under_writes(plan, writer, args.duration)
            swap_plan = Plan("127.0.0.1", ports["replica"], paths, rate, args.swap_duration,
                             args.connections, args.processes)  # fmt: skip
            swapper = ChangeWriter(
                admin_url, args.subjects, args.swaps_per_second, CONFIGURATION_KINDS, seed=6
            )
            swaps = await under_writes(swap_plan, swapper, args.swap_duration)
    return {"maximum": maximum, "rate": rate, "load": load, "swaps": swaps}


async def max_throughput(port: int, args: argparse.Namespace) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as directory:
        script = Path(directory) / "random_subjects.lua"
        script.write_text(WRK_SCRIPT % args.subjects)
        print(f"maximum: wrk for {args.max_duration} s ...", flush=True)
        process = await asyncio.create_subprocess_exec(
            *("wrk", "-t", "1", "-c", "16", "-d", f"{args.max_duration}s", "--latency"),
            *("-s", str(script), f"http://127.0.0.1:{port}"),
            stdout=asyncio.subprocess.PIPE,
        )
        output, _ = await process.communicate()
    result = parse_wrk(output.decode())
    if result["non_2xx"] or result["socket_errors"]:
        raise RuntimeError(f"wrk saw errors:\n{output.decode()}")
    return result


def random_paths(subjects: int) -> list[str]:
    rng = random.Random(3)
    return [f"/v1/subjects/{rng.randint(1, subjects)}/flags" for _ in range(PATHS)]


async def under_writes(plan: Plan, writer: ChangeWriter, duration: float) -> dict[str, Any]:
    """Run the plan and the writer together; the readings, summarized."""
    print(f"{plan.rate:,.0f} req/s for {duration:.0f} s with writes ...", flush=True)
    reads = asyncio.create_task(asyncio.to_thread(run, plan))
    await asyncio.sleep(1.0)  # the generator's children start and connect
    changes = await writer.run(duration - 1.0)
    result = await reads
    return summarize(result, changes)


# ---------------------------------------------------------------------------- summaries


def summarize(result: Result, changes: list[Change]) -> dict[str, Any]:
    latencies = result.latencies_ms(less_lag=True)
    lags = result.lags_ms()
    elapsed = max(result.due) - min(result.due) if result.due else 0.0
    timeline = Timeline(result)
    acknowledged = [change for change in changes if change.acknowledged]
    write_span = (changes[-1].answered - min(c.due for c in changes)) if changes else 0.0
    return {
        "requests": len(latencies),
        "rate": round(len(latencies) / elapsed, 1) if elapsed else 0.0,
        # Below the rate: the server saturated (the rest is unfinished, or answered late).
        "answered_per_s": round(sum(result.statuses.values()) / elapsed, 1) if elapsed else 0.0,
        "latency_ms": distribution(latencies),
        "raw_latency_ms": distribution(result.latencies_ms()),
        "generator_lag_ms": distribution(lags),
        "generator_behind": sum(1 for lag in lags if lag > 1000 * BEHIND_SECONDS),
        "generator_cpu": round(result.cpu_seconds / elapsed, 3) if elapsed else 0.0,
        "statuses": result.statuses,
        "errors": result.errors,
        "unfinished": result.unfinished,
        "writes": {
            "acknowledged": len(acknowledged),
            "failed": len(changes) - len(acknowledged),
            "errors": [change.error for change in changes if change.error][:5],
            "rate": round(len(acknowledged) / write_span, 1) if write_span else 0.0,
            "by_kind": {kind: sum(c.kind == kind for c in acknowledged) for kind in KINDS},
            "latency_ms": distribution(sorted(1000 * (c.answered - c.due) for c in acknowledged)),
        },
        "around_changes_ms": {
            kind: distribution(timeline.maxima(c.answered for c in acknowledged if c.kind == kind))
            for kind in KINDS
        },
        "around_any_change_ms": distribution(timeline.maxima(c.answered for c in acknowledged)),
        "between_changes_ms": distribution(timeline.maxima(midpoints(acknowledged))),
    }


class Timeline:
    """Latencies (less lag, ms) in order of due time, to find the worst in a window."""

    def __init__(self, result: Result) -> None:
        order = sorted(range(len(result.due)), key=result.due.__getitem__)
        self.dues = [result.due[i] for i in order]
        self.latencies = [1000 * (result.latency[i] - result.lag[i]) for i in order]

    def maxima(self, instants: Iterable[float]) -> list[float]:
        """Per instant, the worst latency of the requests due within WINDOW_SECONDS of it
        (instants with no request due around them are left out), sorted."""
        worst = []
        for instant in instants:
            low = bisect_left(self.dues, instant - WINDOW_SECONDS)
            high = bisect_right(self.dues, instant + WINDOW_SECONDS)
            if high > low:
                worst.append(max(self.latencies[low:high]))
        return sorted(worst)


def midpoints(changes: Sequence[Change]) -> list[float]:
    """Instants midway between consecutive changes whose windows touch neither change."""
    times = [change.answered for change in changes]
    return [
        (earlier + later) / 2
        for earlier, later in itertools.pairwise(times)
        if later - earlier > 4 * WINDOW_SECONDS
    ]


def distribution(ordered: Sequence[float]) -> dict[str, float]:
    """Count, p50, p99, p99.9 and max of sorted values (empty: count 0 only)."""
    if not ordered:
        return {"count": 0}
    return {
        "count": len(ordered),
        "p50": round(percentile(ordered, 0.5), 3),
        "p99": round(percentile(ordered, 0.99), 3),
        "p99.9": round(percentile(ordered, 0.999), 3),
        "max": round(ordered[-1], 3),
    }


# ---------------------------------------------------------------------------- the report


def report(result: dict[str, Any], args: argparse.Namespace, loads: list[float]) -> None:
    maximum = result["maximum"]
    print()
    if maximum is not None:
        print(f"maximum (wrk, 16 connections): {maximum['rps']:,.0f} req/s")
    print(f"fixed rate: {result['rate']:,.0f} req/s; load average {loads[0]:.2f} -> {loads[1]:.2f}")
    for phase in ("load", "swaps"):
        summary = result[phase]
        print()
        print(f"{phase}: {summary['requests']:,} requests due at {summary['rate']:,.0f}/s, "
              f"answered {summary['answered_per_s']:,.0f}/s over the schedule, "
              f"statuses {summary['statuses']}, errors {summary['errors']}, "
              f"unfinished {summary['unfinished']}")  # fmt: skip
        print(f"{'ms':<34}{'count':>8}{'p50':>9}{'p99':>9}{'p99.9':>9}{'max':>9}")
        rows = [
            ("latency (less generator lag)", summary["latency_ms"]),
            ("latency (raw, from schedule)", summary["raw_latency_ms"]),
            ("generator lag", summary["generator_lag_ms"]),
            ("write acknowledged after due", summary["writes"]["latency_ms"]),
            ("worst within 50 ms of a change", summary["around_any_change_ms"]),
            *((f"  ... of a {kind} change", summary["around_changes_ms"][kind]) for kind in KINDS),
            ("worst within 50 ms, between changes", summary["between_changes_ms"]),
        ]
        for label, values in rows:
            if values["count"]:
                print(f"{label:<34}{values['count']:>8}" + "".join(
                    f"{values[key]:>9.2f}" for key in ("p50", "p99", "p99.9", "max")
                ))  # fmt: skip
        writes = summary["writes"]
        print(f"writes: {writes['acknowledged']} acknowledged ({writes['rate']}/s), "
              f"{writes['failed']} failed {writes['errors'][:2]}")  # fmt: skip
        print(f"  by kind {writes['by_kind']}")
        behind = summary["generator_behind"]
        print(f"generator: {summary['generator_cpu']:.0%} of a core; "
              f"{behind} requests ({behind / max(summary['requests'], 1):.2%}) sent more than "
              f"{1000 * BEHIND_SECONDS:.0f} ms late by the generator itself"
              + (" -- it fell behind its schedule" if behind else ""))  # fmt: skip
    print(json.dumps({
        "benchmark": "fixed_rate",
        "subjects": args.subjects,
        "connections": args.connections,
        "load_average": loads,
        "changes_per_second": args.changes_per_second,
        "swaps_per_second": args.swaps_per_second,
        **result,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
