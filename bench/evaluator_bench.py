"""The public Evaluator against the snapshot under it and a bound dict lookup, in one run.

    python bench/evaluator_bench.py [--subjects 10000] [--lookups 1000000] [--repeat 5]

Builds bench/engine_bench.py's State in memory (ids 0..N-1, 100 buckets, 20 features, groups,
a live A/B test), serves it from an `Evaluator` (installed as an upstream would send it: no
database, no network) and times, interleaved round by round (best of ``--repeat``), random
lookups spread over all N ids:

  - dict:               a bound ``dict.__getitem__`` over {id: flags} of the ids looked up
                        (the baseline, as bench/engine_bench.py's)
  - variants, variant, flags_json:    ``snapshot.X(id)`` against ``ev.X(id)``
  - evaluate:           ``snapshot.evaluate(str(id))`` against ``ev.evaluate(str(id))``
                        (the key entry point; keys already evaluated once, as a server sees
                        them again), and a bound dict lookup over {str(id): ...}
  - evaluate(uuid):     ``ev.evaluate`` of 10,000 repeating UUIDs (cached per snapshot) and
                        of a new UUID every call (hashed), against ``ev.variants``

Targets (issue 25, goal 7): every ``ev.X`` at least 0.9x ``snapshot.X`` and at least 0.6x the
dict lookup; goal 6 (``--subjects 10000000``): ``ev.variants`` at least 0.55x the dict lookup;
issue 19: a hashed key at least 0.5x ``ev.variants``.
Rates are per CPU second of this process. Prints a table and one JSON line, with the load
average: on a shared machine compare the ratios within one run, never the absolute rates
across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from engine_bench import NOW, build_state  # noqa: E402

from flaggery.live.evaluator import Evaluator  # noqa: E402

FEATURE = "feature-3"


def rate(call: Callable[[], None], lookups: int) -> float:
    """Calls per CPU second of this process: on a shared machine wall-clock time would count
    other processes' turns on the cores."""
    started = time.process_time()
    call()
    return lookups / (time.process_time() - started)


def loops(
    lookup: Callable[..., object], keys: list[object], extra: tuple[object, ...]
) -> Callable[[], None]:
    """A loop calling ``lookup(key, *extra)`` for every key (the loop is timed with it)."""
    if extra:
        (argument,) = extra

        def run_with() -> None:
            for key in keys:
                lookup(key, argument)

        return run_with

    def run() -> None:
        for key in keys:
            lookup(key)

    return run


async def measure(subjects: int, lookups: int, repeat: int) -> dict[str, float]:
    rng = random.Random(25)
    state = build_state(subjects, rng)
    evaluator = Evaluator.from_upstream("http://127.0.0.1:9", clock=lambda: NOW)
    # The upstream's way in (GET /v1/snapshot) without the network: the same install.
    await evaluator._replica.install(state, "benchmark")
    del state
    snapshot = evaluator.snapshot
    ids: list[object] = [rng.randrange(subjects) for _ in range(lookups)]
    keys: list[object] = [str(subject_id) for subject_id in ids]
    # Over the ids looked up, as bench/engine_bench.py's baseline: at ten million subjects a
    # dict of every subject would miss the caches itself and flatter the ratio.
    by_id = {subject_id: snapshot.variants(subject_id) for subject_id in set(ids)}  # type: ignore[arg-type]
    by_key = {str(subject_id): flags for subject_id, flags in by_id.items()}
    for key in set(keys):  # a server sees keys again: the per-snapshot cache holds them
        evaluator.evaluate(key)  # type: ignore[arg-type]
        snapshot.evaluate(key)
    candidates = {
        "dict": loops(by_id.__getitem__, ids, ()),
        "snapshot.variants": loops(snapshot.variants, ids, ()),
        "ev.variants": loops(evaluator.variants, ids, ()),
        "snapshot.variant": loops(snapshot.variant, ids, (FEATURE,)),
        "ev.variant": loops(evaluator.variant, ids, (FEATURE,)),
        "snapshot.flags_json": loops(snapshot.flags_json, ids, ()),
        "ev.flags_json": loops(evaluator.flags_json, ids, ()),
        "dict[str]": loops(by_key.__getitem__, keys, ()),
        "snapshot.evaluate": loops(snapshot.evaluate, keys, ()),
        "ev.evaluate": loops(evaluator.evaluate, keys, ()),
    }
    # Hashed keys (issue 19): 10,000 visitors' UUIDs seen again (the per-snapshot cache),
    # and a UUID never seen in every call (hashing each; a fresh list each round).
    pool = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(10_000)]
    repeated: list[object] = [pool[rng.randrange(len(pool))] for _ in range(lookups)]
    fresh_count = min(lookups, 100_000)
    fresh = [
        [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(fresh_count)]
        for _ in range(repeat)
    ]
    candidates["ev.evaluate(uuid seen)"] = loops(evaluator.evaluate, repeated, ())
    best = dict.fromkeys([*candidates, "ev.evaluate(uuid new)"], 0.0)
    for round_number in range(repeat):
        # The previous round's new UUIDs filled and emptied the bounded cache: seen again here
        # first, the pool measures the cached path (a key seen before), not re-evaluation.
        for key in pool + keys:
            evaluator.evaluate(key)  # type: ignore[arg-type]
            snapshot.evaluate(key)
        for name, call in candidates.items():
            best[name] = max(best[name], rate(call, lookups))
        new_keys: list[object] = list(fresh[round_number])
        new_rate = rate(loops(evaluator.evaluate, new_keys, ()), fresh_count)
        best["ev.evaluate(uuid new)"] = max(best["ev.evaluate(uuid new)"], new_rate)
    return best


def ratios(best: dict[str, float]) -> dict[str, float]:
    result = {}
    for read in ("variants", "variant", "flags_json", "evaluate"):
        baseline = best["dict[str]"] if read == "evaluate" else best["dict"]
        result[f"ev_{read}_vs_snapshot"] = best[f"ev.{read}"] / best[f"snapshot.{read}"]
        result[f"ev_{read}_vs_dict"] = best[f"ev.{read}"] / baseline
        result[f"snapshot_{read}_vs_dict"] = best[f"snapshot.{read}"] / baseline
    for kind in ("seen", "new"):
        result[f"ev_evaluate_uuid_{kind}_vs_ev_variants"] = (
            best[f"ev.evaluate(uuid {kind})"] / best["ev.variants"]
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=10_000)
    parser.add_argument("--lookups", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    best = asyncio.run(measure(args.subjects, args.lookups, args.repeat))
    result = ratios(best)
    load = os.getloadavg()
    print(f"subjects {args.subjects:,}, {args.lookups:,} random lookups, best of {args.repeat}")
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (ratios within this run)")
    print(f"{'lookup':<22}{'calls/s':>14}{'vs dict':>9}{'vs snapshot':>13}")
    for name, calls in best.items():
        if "uuid" in name:
            ratio = calls / best["ev.variants"]
            print(f"{name:<22}{calls:>14,.0f}{'':>9}{ratio:>13.2f}  (vs ev.variants)")
            continue
        read = name.split(".")[-1]
        baseline = best["dict[str]"] if read == "evaluate" else best["dict"]
        if name.startswith("dict"):
            baseline = calls
        versus = f"{calls / best['snapshot.' + read]:>13.2f}" if name.startswith("ev.") else ""
        print(f"{name:<22}{calls:>14,.0f}{calls / baseline:>9.2f}{versus}")
    record = {
        "benchmark": "evaluator",
        "subjects": args.subjects,
        "lookups": args.lookups,
        "load_average": round(load[0], 2),
        **{name: round(calls) for name, calls in best.items()},
        **{name: round(value, 3) for name, value in result.items()},
    }
    print(json.dumps(record))


if __name__ == "__main__":
    main()
