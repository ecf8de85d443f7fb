"""Exposure intake over HTTP: accepted exposures/s, and the flags route while they flow.

    python bench/exposures_bench.py [--duration 10] [--rounds 2] [--connections 16]

Seeds bench/seed.py's dataset (10,000 subjects, 100 buckets, the A/B test checkout_test) into a
scratch PostgreSQL database and starts one ``flaggery`` read-only replica (``--workers``, 2 by
default). Then, for ``--rounds`` rounds, three wrk runs:
  - flags:       GET /v1/subjects/{random id}/flags alone (the baseline)
  - exposures:   POST /v1/exposures alone, as fast as it answers: batches of 100 exposures of
                 random subjects, each reporting its assigned group, from ``--connections``
                 clients (16)
  - both:        the two at once, each with ``--connections`` clients, the exposure clients
                 paced to send ``--rate`` exposures/s in all (20,000; each waits
                 connections x 100 / rate seconds before each request, so the rate reached
                 is a little lower and is reported)
Accepted exposures/s is wrk's 202 answers/s x 100. Any other answer fails the run, except in
the exposure runs, where the intake may refuse batches with 503 once MAX_PENDING exposures
wait for the next flush (its backpressure: the client retries; the unpaced run reaches it, and
its backlog can still be flushing when the paced run starts): only accepted batches count, and
the refusals are printed.
Afterwards the database's counters are read back: every accepted exposure must be counted
(written within FLAGGERY_EXPOSURE_FLUSH_INTERVAL; the server flushes again at stop), and the
flags answers served, counted as assignments (every flags request of the runs: the test is
live throughout).
Target (issue 23): 20,000 exposures/s into one replica, flags in "both" >= 0.9x "flags" alone.
Prints a table and one JSON line with the load average: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from http_bench import flaggery_command, free_port, server, wrk_arguments  # noqa: E402
from report import parse_wrk  # noqa: E402
from seed import SUBJECTS, scratch_database, seed  # noqa: E402

BATCH = 100
TEST = "checkout_test"

FLAGS = """
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/v1/subjects/" .. math.random(1, SUBJECTS) .. "/flags")
end
"""
EXPOSURES = """
math.randomseed(os.time() + 1)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
GROUPS
request = function()
  local items = {}
  for i = 1, BATCH do
    local id = math.random(1, SUBJECTS)
    items[i] = '{"context_id":"' .. id .. '","test":"TEST","group":"' .. groups[id]
      .. '","timestamp":"WHEN"}'
  end
  return wrk.format(nil, "/v1/exposures", nil, '{"exposures":[' .. table.concat(items, ",") .. ']}')
end
"""
PACED = """
delay = function()
  return DELAY_MS
end
"""


async def assigned_groups(db_url: str) -> list[str]:
    """Subject id 1..SUBJECTS -> its group in the test (index id - 1), from an Evaluator."""
    from flaggery.live.evaluator import Evaluator

    async with Evaluator.from_db_url(db_url) as evaluator:
        test = evaluator.snapshot.config.abtests[TEST]
        holder = {b: g.name for g in test.groups for b in g.buckets}
        return [holder[evaluator.subject(i).bucket] for i in range(1, SUBJECTS + 1)]


def exposure_script(groups: list[str], when: str) -> str:
    table = "groups = {" + ",".join(f'"{g}"' for g in groups) + "}"
    text = EXPOSURES.replace("GROUPS", table).replace("BATCH", str(BATCH))
    return text.replace("SUBJECTS", str(SUBJECTS)).replace("TEST", TEST).replace("WHEN", when)


def start_wrk(base: str, script: Path, args: argparse.Namespace) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *("wrk", "-t", str(args.threads), "-c", str(args.connections)),
            *("-d", f"{args.duration}s", "--latency", "-s", str(script), base),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )


def finish_wrk(process: subprocess.Popen[str], *, refusals: bool = False) -> dict[str, float]:
    """wrk's result; an error unless every answer was 2xx. With `refusals`, non-2xx answers
    are allowed: unpaced, the intake refuses batches with 503 once MAX_PENDING exposures wait
    for the next flush (its backpressure), and only the accepted ones count."""
    output, _ = process.communicate()
    result = parse_wrk(output)
    if process.returncode or (result["non_2xx"] and not refusals) or result["socket_errors"]:
        raise RuntimeError(f"wrk saw errors:\n{output}")
    return result


def accepted_per_second(result: dict[str, float], duration: float) -> float:
    """Exposures accepted a second: the 2xx batches of a wrk run of `duration` seconds."""
    return (result["requests"] - result["non_2xx"]) * BATCH / duration


def drive(base: str, scripts: dict[str, Path], args: argparse.Namespace) -> dict[str, list[float]]:
    runs: dict[str, list[float]] = {
        "flags": [],
        "exposures": [],
        "both_flags": [],
        "both_exposures": [],
        "refused_batches": [],
    }
    for round_number in range(1, args.rounds + 1):
        runs["flags"].append(finish_wrk(start_wrk(base, scripts["flags"], args))["rps"])
        unpaced = finish_wrk(start_wrk(base, scripts["exposures"], args), refusals=True)
        rate = accepted_per_second(unpaced, args.duration)
        runs["exposures"].append(rate)
        both = [start_wrk(base, scripts[name], args) for name in ("flags", "paced")]
        flags = finish_wrk(both[0])
        exposures = finish_wrk(both[1], refusals=True)
        runs["both_flags"].append(flags["rps"])
        runs["both_exposures"].append(accepted_per_second(exposures, args.duration))
        runs["refused_batches"].append(unpaced["non_2xx"] + exposures["non_2xx"])
        print(
            f"round {round_number}: flags {runs['flags'][-1]:,.0f} req/s; exposures "
            f"{rate:,.0f}/s; both: flags {flags['rps']:,.0f} req/s, exposures "
            f"{runs['both_exposures'][-1]:,.0f}/s; batches refused (503) "
            f"{runs['refused_batches'][-1]:,.0f}  (load {os.getloadavg()[0]:.1f})",
            flush=True,
        )
    return runs


def serve_and_drive(
    db_url: str, groups: list[str], args: argparse.Namespace
) -> dict[str, list[float]]:
    env = {"FLAGGERY_DB_URL": db_url, "FLAGGERY_ADMIN_MODE": "false"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with contextlib.ExitStack() as stack:
        stack.enter_context(server(flaggery_command(port, args.workers), env, base + "/readyz"))
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        when = (datetime.now(UTC) + timedelta(seconds=5)).isoformat()
        delay_ms = round(1000 * args.connections * BATCH / args.rate)
        texts = {
            "flags": FLAGS.replace("SUBJECTS", str(SUBJECTS)),
            "exposures": exposure_script(groups, when),
            "paced": exposure_script(groups, when) + PACED.replace("DELAY_MS", str(delay_ms)),
        }
        scripts = {}
        for name, text in texts.items():
            scripts[name] = workdir / f"{name}.lua"
            scripts[name].write_text(text)
        return drive(base, scripts, args)


async def counted(db_url: str) -> tuple[int, int]:
    """(exposures, assignments: flags answers served while the test was live) counted."""
    from flaggery.store.database import Database
    from flaggery.store.exposures import read_assignment_counts, read_exposure_counts

    db = Database(db_url)
    try:
        rows = await read_exposure_counts(db, TEST)
        served = await read_assignment_counts(db, TEST)
    finally:
        await db.dispose()
    return sum(row.first + row.repeats for row in rows), sum(served.values())


def report(runs: dict[str, list[float]], total: tuple[int, int], args: argparse.Namespace) -> None:
    best = {name: max(values) for name, values in runs.items()}
    ratios = [both / alone for both, alone in zip(runs["both_flags"], runs["flags"], strict=True)]
    load = os.getloadavg()[0]
    print()
    print(f"{'run':<32}{'best':>14}")
    print(f"{'flags alone (req/s)':<32}{best['flags']:>14,.0f}")
    print(f"{'exposures alone (/s)':<32}{best['exposures']:>14,.0f}")
    print(f"{'both: flags (req/s)':<32}{best['both_flags']:>14,.0f}")
    print(f"{'both: exposures, paced (/s)':<32}{best['both_exposures']:>14,.0f}")
    print(
        f"{'flags ratio while exposures flow':<32}{max(ratios):>14.2f}  (per round: "
        + ", ".join(f"{r:.2f}" for r in ratios)
        + ")"
    )
    print(f"exposures counted in the database: {total[0]:,}; flags answers counted as "
          f"assignments: {total[1]:,}")  # fmt: skip
    print(f"load average (1 min) {load:.2f}: measured under load if well above 0")
    summary = {
        "benchmark": "exposures",
        "workers": args.workers,
        "connections": args.connections,
        "batch": BATCH,
        "duration_s": args.duration,
        "rounds": args.rounds,
        "load_average": round(load, 2),
        "runs": runs,
        "exposures_per_s": round(best["exposures"]),
        "paced_rate": args.rate,
        "exposures_per_s_with_flags": round(best["both_exposures"]),
        "flags_ratio": round(max(ratios), 3),
        "counted": total[0],
        "assignments": total[1],
    }
    print(json.dumps(summary))


async def run(args: argparse.Namespace) -> None:
    async with scratch_database(args.postgres_url) as db_url:
        await seed(db_url)
        await asyncio.sleep(2.5)  # the seeded A/B test goes live 2 s after seeding
        started = time.perf_counter()
        runs = serve_and_drive(db_url, await assigned_groups(db_url), args)
        print(f"driven in {time.perf_counter() - started:.0f} s", flush=True)
        total = await counted(db_url)
    report(runs, total, args)


def main() -> None:
    sys.argv, rate = _rate_option(sys.argv)
    args = wrk_arguments(__doc__.splitlines()[0], rounds=2)
    args.rate = rate
    asyncio.run(run(args))


def _rate_option(argv: list[str]) -> tuple[list[str], float]:
    """``--rate N`` taken out of ``argv`` (wrk_arguments parses the rest)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--rate", type=float, default=20_000.0, help="paced exposures/s")
    known, rest = parser.parse_known_args(argv[1:])
    return [argv[0], *rest], known.rate


if __name__ == "__main__":
    main()
