"""CPU per exposure at each stage of the intake, and what counting assignments adds to the
flags route: process CPU time, so the numbers hold on a loaded machine.

    python bench/exposure_cpu_bench.py [--postgres-url URL] [--batches 200] [--rounds 5]

Seeds bench/seed.py's dataset (10,000 subjects, the A/B test checkout_test) into a scratch
PostgreSQL database, loads an Evaluator, and per round (best of ``--rounds``):
  - intake: ``--batches`` bodies of 100 exposures of random subjects through each stage the
    server runs for ``POST /v1/exposures``: decode (msgspec, the route's decoder), classify
    (`Classifier.classify_all`), tally (`ExposureIntake.accept`) and the flush to the
    database (`ExposureIntake.flush`: one transaction; its CPU is this process's, the
    database's own is not counted). Target (issue 23): about 1-2 us an exposure in all, so
    20,000 exposures/s cost a server 2-4% of a core.
  - flags route: `FlagsFastPath.answer` for random subjects, without and with an
    `AssignmentTally` to count in, interleaved; the ratio is the cost of counting.
Prints a table and one JSON line with the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import msgspec

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from seed import SUBJECTS, scratch_database, seed  # noqa: E402

from flaggery.access import Keyring  # noqa: E402
from flaggery.engine import Snapshot  # noqa: E402
from flaggery.engine.assignment_tally import AssignmentTally  # noqa: E402
from flaggery.http.experiments import ExposureBatch  # noqa: E402
from flaggery.http.serving import FlagsFastPath  # noqa: E402
from flaggery.live.evaluator import Evaluator  # noqa: E402
from flaggery.live.exposure_intake import ExposureIntake  # noqa: E402
from flaggery.settings import Settings  # noqa: E402
from flaggery.store.database import Database  # noqa: E402

BATCH = 100
TEST = "checkout_test"
STAGES = ("decode", "classify", "tally", "flush")


def bodies(snapshot: Snapshot, count: int, rng: random.Random) -> list[bytes]:
    """`count` JSON bodies of BATCH exposures, each reporting the subject's assigned group."""
    test = snapshot.config.abtests[TEST]
    holder = {b: g.name for g in test.groups for b in g.buckets}
    when = datetime.now(UTC).isoformat()
    made = []
    for _ in range(count):
        ids = [rng.randint(1, SUBJECTS) for _ in range(BATCH)]
        items = [
            {"context_id": str(i), "test": TEST, "group": holder[snapshot.subject(i).bucket],
             "timestamp": when}
            for i in ids
        ]  # fmt: skip
        made.append(json.dumps({"exposures": items}).encode())
    return made


async def intake_round(intake: ExposureIntake, snapshot: Snapshot, raw: list[bytes]) -> list[float]:
    """CPU seconds of each stage over every body."""
    decoder = msgspec.json.Decoder(ExposureBatch)
    clock = time.process_time
    started = clock()
    batches = [decoder.decode(body) for body in raw]
    decoded = clock()
    classifier = intake.classifier(snapshot)
    classified = [classifier.classify_all(batch.exposures) for batch in batches]
    done = clock()
    for exposures in classified:
        intake.accept(exposures)
    tallied = clock()
    await intake.flush()
    return [decoded - started, done - decoded, tallied - done, clock() - tallied]


def answer_loop(fast_path: FlagsFastPath, paths: list[str]) -> Callable[[], float]:
    answer = fast_path.answer

    def run() -> float:
        started = time.process_time()
        for path in paths:
            answer(path, [])
        return time.process_time() - started

    return run


def flags_round(snapshot: Snapshot, paths: list[str]) -> tuple[float, float]:
    """CPU seconds of answering every path without, then with, assignment counting."""
    plain = FlagsFastPath(None, Keyring(Settings()), cors=False)
    counting = FlagsFastPath(None, Keyring(Settings()), cors=False)
    plain.snapshot_of = counting.snapshot_of = lambda: snapshot
    counting.assignments = AssignmentTally()
    return answer_loop(plain, paths)(), answer_loop(counting, paths)()


async def measure(db_url: str, args: argparse.Namespace) -> dict[str, float]:
    rng = random.Random(3)
    db = Database(db_url)
    async with Evaluator.from_db_url(db_url) as evaluator:
        snapshot = evaluator.snapshot
        raw = bodies(snapshot, args.batches, rng)
        paths = [f"/v1/subjects/{rng.randint(1, SUBJECTS)}/flags" for _ in range(100_000)]
        intake = ExposureIntake(db, 3600)
        await intake_round(intake, snapshot, raw)  # the first flush sets every first bit
        stages = [float("inf")] * len(STAGES)
        plain = counting = float("inf")
        for _ in range(args.rounds):
            stages = [
                min(a, b)
                for a, b in zip(stages, await intake_round(intake, snapshot, raw), strict=True)
            ]
            one, other = flags_round(snapshot, paths)
            plain, counting = min(plain, one), min(counting, other)
    await db.dispose()
    exposures = args.batches * BATCH
    result = {
        f"{stage}_us": 1e6 * cpu / exposures for stage, cpu in zip(STAGES, stages, strict=True)
    }
    result["intake_us"] = sum(result[f"{stage}_us"] for stage in STAGES)
    result["flags_answer_us"] = 1e6 * plain / len(paths)
    result["flags_answer_counting_us"] = 1e6 * counting / len(paths)
    return result


def report(result: dict[str, float], args: argparse.Namespace) -> None:
    load = os.getloadavg()[0]
    print(f"{'CPU per exposure (best of rounds)':<40}{'us':>8}")
    for stage in (*STAGES, "intake"):
        print(f"{'  ' + stage:<40}{result[f'{stage}_us']:>8.2f}")
    print(f"{'  at 20,000/s: share of one core':<40}{result['intake_us'] * 2e4 / 1e6:>8.1%}")
    print(f"{'flags fast path, per answer':<40}{'us':>8}")
    print(f"{'  without assignment counting':<40}{result['flags_answer_us']:>8.2f}")
    print(f"{'  with assignment counting':<40}{result['flags_answer_counting_us']:>8.2f}")
    print(f"load average (1 min) {load:.2f}: CPU time, so comparable under load")
    summary = {"benchmark": "exposure_cpu", "batches": args.batches, "rounds": args.rounds,
               "load_average": round(load, 2)}  # fmt: skip
    print(json.dumps(summary | {name: round(value, 3) for name, value in result.items()}))


async def run(args: argparse.Namespace) -> None:
    async with scratch_database(args.postgres_url) as db_url:
        await seed(db_url)
        await asyncio.sleep(2.5)  # the seeded A/B test goes live 2 s after seeding
        result = await measure(db_url, args)
    report(result, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--batches", type=int, default=200, help="bodies of 100 per round")
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
