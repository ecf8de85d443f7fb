"""A new targeting key's bucket, in process: the C accelerator against the Python reference.

    python bench/keyhash_bench.py [--keys 100000] [--rounds 5]

Two measures, each in CPU seconds of this process (time.process_time), the kinds alternating
within each round in rotating order, so a busy machine slows all of them alike:

  - the hot function alone: ``KeyBucketer.index(new UUID)`` over 100 buckets, the C
    accelerator (flaggery/engine/_keyhash.c) against `PythonKeyBucketer`, and a loop calling
    ``len`` (the loop's own cost, to subtract);
  - the issue 19 ratio: ``ev.evaluate(new UUID)`` against ``ev.variants(registered id)`` on
    bench/seed.py's dataset (10,000 subjects, 100 buckets, 20 features) in a scratch
    PostgreSQL database, with the accelerator and with the reference. The second Evaluator is
    started after this script sets ``targeting._CKeyBucketer`` to None (a benchmark's
    switch, not an API): its snapshot hashes with `PythonKeyBucketer`, as an install without
    a compiler does. Target: evaluate(new UUID) >= 0.5x variants(id).

Every key of a round is a UUID no snapshot has seen (new ones per round and per kind). Prints a
table, one JSON line and the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from seed import SERVER_URL, SUBJECTS, scratch_database, seed  # noqa: E402

from flaggery.engine import targeting  # noqa: E402
from flaggery.live.evaluator import Evaluator  # noqa: E402

SALT = bytes(range(16))
BUCKETS = 100


def new_keys(rng: random.Random, count: int) -> list[str]:
    return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(count)]


def cpu_per_call(function: Callable[[Any], object], arguments: list[object]) -> float:
    """CPU microseconds per call of `function` over `arguments`."""
    started = time.process_time()
    for argument in arguments:
        function(argument)
    return (time.process_time() - started) / len(arguments) * 1e6


async def run(args: argparse.Namespace) -> None:
    if not targeting.ACCELERATED:
        sys.exit("The C accelerator is not built: pip install -e . with a C compiler first.")
    rng = random.Random(19)
    c_index = targeting.key_bucketer(SALT, BUCKETS).index
    python_index = targeting.PythonKeyBucketer(SALT, BUCKETS).index
    async with scratch_database(args.postgres_url) as db_url:
        await seed(db_url)
        async with Evaluator.from_db_url(db_url) as accelerated:
            accelerator = targeting._CKeyBucketer
            targeting._CKeyBucketer = None  # the second snapshot hashes in Python
            try:
                async with Evaluator.from_db_url(db_url) as reference:
                    kinds: dict[str, tuple[Callable[[Any], object], bool]] = {
                        "loop (len)": (len, True),
                        "index C": (c_index, True),
                        "index Python": (python_index, True),
                        "variants(id)": (accelerated.variants, False),
                        "evaluate C": (accelerated.evaluate, True),
                        "evaluate Python": (reference.evaluate, True),
                    }
                    times: dict[str, list[float]] = {kind: [] for kind in kinds}
                    names = list(kinds)
                    for round_number in range(args.rounds):
                        shift = round_number % len(names)
                        for kind in names[shift:] + names[:shift]:
                            function, keyed = kinds[kind]
                            arguments: list[object] = (
                                list(new_keys(rng, args.keys))
                                if keyed
                                else [rng.randint(1, SUBJECTS) for _ in range(args.keys)]
                            )
                            times[kind].append(cpu_per_call(function, arguments))
            finally:
                targeting._CKeyBucketer = accelerator
    report(args, {kind: statistics.median(values) for kind, values in times.items()})


def report(args: argparse.Namespace, median: dict[str, float]) -> None:
    load = os.getloadavg()[0]
    loop = median["loop (len)"]
    print(f"{'kind':<18}{'CPU us/call':>12}{'minus loop':>12}   (load average {load:.2f})")
    for kind, cost in median.items():
        print(f"{kind:<18}{cost:>12.3f}{cost - loop:>12.3f}")
    ratios = {
        "index_python_over_c": (median["index Python"] - loop) / (median["index C"] - loop),
        "evaluate_new_uuid_c_x_variants": median["variants(id)"] / median["evaluate C"],
        "evaluate_new_uuid_python_x_variants": median["variants(id)"] / median["evaluate Python"],
    }
    for name, ratio in ratios.items():
        print(f"{name:<40}{ratio:>8.2f}")
    print(
        json.dumps(
            {
                "benchmark": "keyhash",
                "keys": args.keys,
                "rounds": args.rounds,
                "load_average": round(load, 2),
                "cpu_us_per_call": {kind: round(cost, 3) for kind, cost in median.items()},
                **{name: round(ratio, 3) for name, ratio in ratios.items()},
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres-url", default=SERVER_URL)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
