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
  - whole requests (a read-only app on that database, flaggery's protocol over
    bench/protocol_bench.py's fake transport, as bench/flags_path_bench.py): CPU of one
    ``POST /v1/exposures`` of 100 and of one flags GET, alternating. ``flags_given_up`` is
    how many flags requests 20,000 exposures/s (200 batches) cost a second, and
    ``predicted_ratio`` the flags route's share left when it serves ``--flags-rate``
    requests/s alone (70,000: a quiet run of bench/http_bench.py): what the HTTP benchmark's
    ratio should approach on a quiet machine, leaving out the load generator's own CPU. The
    process's CPU includes the app's background work (the exposure flush every second, the
    PostgreSQL change feed), as a server's does.
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

from flags_path_bench import protocol_for  # noqa: E402
from seed import SUBJECTS, scratch_database, seed  # noqa: E402

from flaggery.access import Keyring  # noqa: E402
from flaggery.engine import Snapshot  # noqa: E402
from flaggery.engine.assignment_tally import AssignmentTally  # noqa: E402
from flaggery.http.app import create_app  # noqa: E402
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


async def request_cpu(app: object, requests: list[bytes], status: bytes) -> float:
    """CPU seconds per request of `requests` through flaggery's protocol, one keep-alive
    connection, one at a time; each must be answered with `status`."""
    protocol, transport = protocol_for(app, flaggery=True)
    answers: list[bytes] = []
    transport.write = answers.append  # type: ignore[method-assign, assignment]
    started = time.process_time()
    for request in requests:
        before = len(answers)
        protocol.data_received(request)
        while len(answers) == before:  # the request's task runs until it answers
            await asyncio.sleep(0)
    elapsed = time.process_time() - started
    protocol.connection_lost(None)
    wrong = [bytes(a[:300]) for a in answers if a.startswith(b"HTTP/") and status not in a[:20]]
    assert not wrong, f"{len(wrong)} answers were not {status!r}: {wrong[0]!r}"
    return elapsed / len(requests)


async def whole_requests(db_url: str, raw: list[bytes], rounds: int) -> tuple[float, float]:
    """(CPU seconds of one exposures POST of BATCH, of one flags GET), best of `rounds`."""
    head = (
        b"POST /v1/exposures HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Type: application/json\r\n"
    )
    posts = [head + b"Content-Length: %d\r\n\r\n" % len(body) + body for body in raw]
    rng = random.Random(5)
    line = b"GET /v1/subjects/%d/flags HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n"
    gets = [line % rng.randint(1, SUBJECTS) for _ in range(10 * len(raw))]
    settings = Settings.from_env({}, db_url=db_url, admin_mode=False, enable_prometheus=False)
    app = create_app(settings)
    post = get = float("inf")
    async with app.router.lifespan_context(app):
        for _ in range(rounds):
            post = min(post, await request_cpu(app, posts, b" 202 "))
            get = min(get, await request_cpu(app, gets, b" 200 "))
    return post, get


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
    post, get = await whole_requests(db_url, raw, args.rounds)
    result["post_request_us"], result["flags_request_us"] = 1e6 * post, 1e6 * get
    result["flags_given_up"] = 200 * post / get
    result["predicted_ratio"] = 1 - result["flags_given_up"] / args.flags_rate
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
    print(f"{'whole requests (protocol and app)':<40}{'us':>8}")
    print(f"{'  POST /v1/exposures of 100':<40}{result['post_request_us']:>8.1f}")
    print(f"{'  GET a subject flags':<40}{result['flags_request_us']:>8.1f}")
    print(f"{'  flags requests given up at 20,000/s':<40}{result['flags_given_up']:>8.0f}")
    print(
        f"{'  predicted flags ratio':<40}{result['predicted_ratio']:>8.3f}"
        f"  (flags alone at {args.flags_rate:,.0f} req/s)"
    )
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
    parser.add_argument("--flags-rate", type=float, default=70_000.0, help="flags req/s alone")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
