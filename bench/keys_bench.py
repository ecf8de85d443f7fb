"""Hashed targeting keys against registered subjects, over HTTP, OFREP and in process, one run.

    python bench/keys_bench.py [--duration 10] [--rounds 2] [--connections 16]

Seeds bench/seed.py's dataset (10,000 subjects, 100 buckets, 20 features) into a scratch
PostgreSQL database and starts one read-only ``flaggery`` server (2 workers). wrk then drives,
alternately for ``--rounds`` rounds:
  - subject-flags: GET /v1/subjects/{random id}/flags (the baseline)
  - key-flags:     GET /v1/keys/{new random UUID}/flags (every request a key never seen: the
                   worst case, hashing each time)
  - ofrep-ids:     POST /ofrep/v1/evaluate/flags/{feature}, targetingKey a registered id
  - ofrep-uuids:   the same with a new random UUID per request
and, in process over an Evaluator on the same database: ``ev.variants(random id)`` against
``ev.evaluate(key)`` for new UUIDs (hashing each) and for 10,000 repeating UUIDs (the
per-snapshot cache). Targets (issue 19): key-flags >= 0.95x subject-flags, ofrep-uuids >=
0.95x ofrep-ids, ev.evaluate >= 0.5x ev.variants. Prints a table and one JSON line, with the
load average: the machine may be shared, so compare ratios within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from http_bench import flaggery_command, free_port, server, wrk, wrk_arguments  # noqa: E402
from seed import FEATURES, SUBJECTS, scratch_database, seed  # noqa: E402

IN_PROCESS_CALLS = 200_000
REPEATING_KEYS = 10_000

# A version-4 UUID from Lua's generator: a key the server has not seen (2**122 of them).
_UUID_LUA = """
local function uuid()
  return string.format("%08x-%04x-4%03x-%04x-%06x%06x", math.random(0, 0x7fffffff),
    math.random(0, 0xffff), math.random(0, 0xfff), math.random(0x8000, 0xbfff),
    math.random(0, 0xffffff), math.random(0, 0xffffff))
end
"""
SUBJECT_FLAGS = """
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/v1/subjects/" .. math.random(1, SUBJECTS) .. "/flags")
end
"""
KEY_FLAGS = """
math.randomseed(os.time())
UUID
request = function()
  return wrk.format("GET", "/v1/keys/" .. uuid() .. "/flags")
end
"""
_OFREP = """
math.randomseed(os.time())
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
UUID
request = function()
  local feature = string.format("feature_%02d", math.random(0, FEATURES - 1))
  local body = '{"context":{"targetingKey":"' .. KEY .. '"}}'
  return wrk.format(nil, "/ofrep/v1/evaluate/flags/" .. feature, nil, body)
end
"""


def _script(text: str, key: str = "") -> str:
    """A Lua script with the dataset's sizes and the UUID function filled in."""
    replaced = text.replace("SUBJECTS", str(SUBJECTS)).replace("FEATURES", str(FEATURES))
    return replaced.replace("UUID", _UUID_LUA).replace("KEY", key)


async def in_process(db_url: str) -> dict[str, float]:
    """Calls per second of ev.variants(id), ev.evaluate(new UUID), ev.evaluate(repeated UUID)."""
    from flaggery.live.evaluator import Evaluator

    rng = random.Random(19)
    ids = [rng.randint(1, SUBJECTS) for _ in range(IN_PROCESS_CALLS)]
    new_keys = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in ids]
    pool = new_keys[:REPEATING_KEYS]
    repeated = [pool[rng.randrange(REPEATING_KEYS)] for _ in ids]
    async with Evaluator.from_db_url(db_url) as evaluator:
        variants, evaluate = evaluator.variants, evaluator.evaluate
        started = time.perf_counter()
        for subject_id in ids:
            variants(subject_id)
        rates = {"variants_per_s": len(ids) / (time.perf_counter() - started)}
        for name, keys in (("new", new_keys), ("repeated", repeated)):
            started = time.perf_counter()
            for key in keys:
                evaluate(key)
            rates[f"evaluate_{name}_uuid_per_s"] = len(keys) / (time.perf_counter() - started)
    return rates


def serve_and_drive(db_url: str, args: argparse.Namespace) -> dict[str, list[dict[str, float]]]:
    env = {"FLAGGERY_DB_URL": db_url, "FLAGGERY_ADMIN_MODE": "false"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    scripts = {
        "subject-flags": _script(SUBJECT_FLAGS),
        "key-flags": _script(KEY_FLAGS),
        "ofrep-ids": _script(_OFREP, f"math.random(1, {SUBJECTS})"),
        "ofrep-uuids": _script(_OFREP, "uuid()"),
    }
    results: dict[str, list[dict[str, float]]] = {name: [] for name in scripts}
    with contextlib.ExitStack() as stack:
        stack.enter_context(server(flaggery_command(port, args.workers), env, base + "/readyz"))
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        for round_number in range(1, args.rounds + 1):
            for name, text in scripts.items():
                script = workdir / f"{name}.lua"
                script.write_text(text)
                outcome = wrk(base, script, args)  # raises on any non-2xx answer or socket error
                results[name].append(outcome)
                print(f"round {round_number} {name:<14} {outcome['rps']:>10,.0f} req/s", flush=True)
    return results


def report(
    results: dict[str, list[dict[str, float]]], rates: dict[str, float], args: argparse.Namespace
) -> None:
    best = {name: max(runs, key=lambda r: r["rps"]) for name, runs in results.items()}
    print()
    print(f"{'route':<15}{'req/s (best)':>14}{'p50 ms':>9}{'p99 ms':>9}")
    for name, run in best.items():
        p50, p99 = run.get("p50_ms", 0), run.get("p99_ms", 0)
        print(f"{name:<15}{run['rps']:>14,.0f}{p50:>9.3f}{p99:>9.3f}")
    for name, rate in rates.items():
        print(f"{name:<30}{rate:>14,.0f}")
    ratios = {
        "ratio_key_flags": best["key-flags"]["rps"] / best["subject-flags"]["rps"],
        "ratio_ofrep_uuids": best["ofrep-uuids"]["rps"] / best["ofrep-ids"]["rps"],
        "ratio_evaluate_new_uuid": rates["evaluate_new_uuid_per_s"] / rates["variants_per_s"],
        "ratio_evaluate_repeated_uuid": (
            rates["evaluate_repeated_uuid_per_s"] / rates["variants_per_s"]
        ),
    }
    for name, ratio in ratios.items():
        print(f"{name:<30}{ratio:>14.2f}")
    load = os.getloadavg()[0]
    print(f"load average (1 min) {load:.2f}")
    summary = {
        "benchmark": "keys",
        "workers": args.workers,
        "connections": args.connections,
        "duration_s": args.duration,
        "rounds": args.rounds,
        "load_average": round(load, 2),
        "runs": results,
        **{name: round(rate) for name, rate in rates.items()},
        **{name: round(ratio, 3) for name, ratio in ratios.items()},
    }
    print(json.dumps(summary))


async def run(args: argparse.Namespace) -> None:
    async with scratch_database(args.postgres_url) as db_url:
        await seed(db_url)
        await asyncio.sleep(2.5)  # the seeded A/B test goes live 2 s after seeding
        results = serve_and_drive(db_url, args)
        rates = await in_process(db_url)
    report(results, rates, args)


def main() -> None:
    asyncio.run(run(wrk_arguments(__doc__.splitlines()[0], rounds=2)))


if __name__ == "__main__":
    main()
