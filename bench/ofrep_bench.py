"""OFREP throughput against the flags route, in one run on the HTTP benchmark's dataset.

    python bench/ofrep_bench.py [--duration 10] [--rounds 2] [--connections 16]

Seeds bench/seed.py's dataset into a scratch PostgreSQL database and starts two read-only
``flaggery`` servers with 2 workers each: one as deployed by default, one with
``FLAGGERY_CORS_ORIGINS`` set. wrk then drives, alternately for ``--rounds`` rounds, with
random subjects:
  - flags:         GET /v1/subjects/{id}/flags (the baseline)
  - flags+cors:    the same on the CORS server, requests without Origin (servers' requests)
  - key-flags:     GET /v1/keys/{new random UUID}/flags
  - ofrep:         POST /ofrep/v1/evaluate/flags/{feature} with {"context": {"targetingKey": id}}
  - ofrep-uuids:   the same with a new random UUID per request (hashed)
  - ofrep-context: the same with an id and the eleven-attribute context of
                   ofrep_rules_bench.py (this snapshot has no rules: that benchmark has them)
  - bulk:          POST /ofrep/v1/evaluate/flags, random ids (200s)
  - bulk-uuids:    the same with new random UUIDs (200s)
  - ofrep-304:     POST /ofrep/v1/evaluate/flags with the subject's current ETag (304)
and, in process on the same database, ``FlaggeryProvider.resolve_string_details`` over an
Evaluator (random subjects and features, 1,000,000 calls). Prints a table and one JSON line,
with the load average (compare ratios within one run on a shared machine).
Targets (issue 25): ofrep, ofrep-uuids, ofrep-context, bulk, bulk-uuids >= 0.9x flags;
ofrep-304 >= 1.0x flags (issue 12: provider >= 1 M/s). bench/ofrep_path_bench.py says where
the time goes, in process.
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
import urllib.error
import urllib.request
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from http_bench import flaggery_command, free_port, server, wrk, wrk_arguments  # noqa: E402
from ofrep_rules_bench import SCRIPT as CONTEXT_SCRIPT  # noqa: E402
from seed import FEATURES, SUBJECTS, feature_name, scratch_database, seed  # noqa: E402

ETAG_SUBJECTS = 2_000  # subjects whose bulk ETag the 304 script carries (a Lua table)
PROVIDER_CALLS = 1_000_000

FLAGS_SCRIPT = """
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/v1/subjects/" .. math.random(1, %(subjects)d) .. "/flags")
end
"""
SINGLE_SCRIPT = """
math.randomseed(os.time())
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local feature = string.format("feature_%%02d", math.random(0, %(features)d - 1))
  local body = '{"context":{"targetingKey":"' .. math.random(1, %(subjects)d) .. '"}}'
  return wrk.format(nil, "/ofrep/v1/evaluate/flags/" .. feature, nil, body)
end
"""
_UUID_LUA = """
local function uuid()
  return string.format("%08x-%04x-4%03x-%04x-%06x%06x", math.random(0, 0x7fffffff),
    math.random(0, 0xffff), math.random(0, 0xfff), math.random(0x8000, 0xbfff),
    math.random(0, 0xffffff), math.random(0, 0xffffff))
end
"""
KEY_FLAGS_SCRIPT = (
    "math.randomseed(os.time())\n"
    + _UUID_LUA
    + """
request = function()
  return wrk.format("GET", "/v1/keys/" .. uuid() .. "/flags")
end
"""
)
SINGLE_UUID_SCRIPT = (
    "math.randomseed(os.time())\n"
    + _UUID_LUA.replace("%", "%%")
    + """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local feature = string.format("feature_%%02d", math.random(0, %(features)d - 1))
  local body = '{"context":{"targetingKey":"' .. uuid() .. '"}}'
  return wrk.format(nil, "/ofrep/v1/evaluate/flags/" .. feature, nil, body)
end
"""
)
BULK_SCRIPT = (
    "math.randomseed(os.time())\n"
    + _UUID_LUA.replace("%", "%%")
    + """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local body = '{"context":{"targetingKey":"' .. %(key)s .. '"}}'
  return wrk.format(nil, "/ofrep/v1/evaluate/flags", nil, body)
end
"""
)
BULK_304_SCRIPT = """
math.randomseed(os.time())
local etags = {%(etags)s}
wrk.method = "POST"
request = function()
  local id = math.random(1, #etags)
  local headers = {["Content-Type"] = "application/json", ["If-None-Match"] = etags[id]}
  local body = '{"context":{"targetingKey":"' .. id .. '"}}'
  return wrk.format(nil, "/ofrep/v1/evaluate/flags", headers, body)
end
"""


def bulk_etags(base: str, count: int) -> list[str]:
    etags = []
    for subject_id in range(1, count + 1):
        body = json.dumps({"context": {"targetingKey": str(subject_id)}}).encode()
        request = urllib.request.Request(
            base + "/ofrep/v1/evaluate/flags", body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request) as response:
            etags.append(response.headers["ETag"])
    return etags


def check_not_modified(base: str, etags: list[str]) -> None:
    """The 304 run must measure 304s: check a sample before trusting wrk's count."""
    for subject_id in range(1, len(etags) + 1, 97):
        body = json.dumps({"context": {"targetingKey": str(subject_id)}}).encode()
        headers = {"Content-Type": "application/json", "If-None-Match": etags[subject_id - 1]}
        request = urllib.request.Request(base + "/ofrep/v1/evaluate/flags", body, headers)
        try:
            urllib.request.urlopen(request).close()
        except urllib.error.HTTPError as error:
            if error.code == 304:
                continue
            raise
        raise RuntimeError(f"subject {subject_id}: expected 304 for its own ETag, got 200")


async def provider_rate(db_url: str) -> dict[str, float]:
    """FlaggeryProvider.resolve_string_details calls per second, and ev.variants() for scale."""
    from openfeature.evaluation_context import EvaluationContext

    from flaggery.live.evaluator import Evaluator
    from flaggery.openfeature import FlaggeryProvider

    rng = random.Random(5)
    contexts = [EvaluationContext(str(rng.randint(1, SUBJECTS))) for _ in range(4096)]
    features = [feature_name(rng.randrange(FEATURES)) for _ in range(4096)]
    pairs = list(zip(features, contexts, strict=True)) * (PROVIDER_CALLS // 4096 + 1)
    pairs = pairs[:PROVIDER_CALLS]
    async with Evaluator.from_db_url(db_url) as evaluator:
        provider = FlaggeryProvider(evaluator)
        resolve = provider.resolve_string_details
        for feature, context in pairs[:50_000]:  # warm the per-view answers
            resolve(feature, "", context)
        started = time.perf_counter()
        for feature, context in pairs:
            resolve(feature, "", context)
        provider_seconds = time.perf_counter() - started
        ids = [int(str(context.targeting_key)) for _, context in pairs]
        variants = evaluator.variants
        started = time.perf_counter()
        for subject_id in ids:
            variants(subject_id)
        variants_seconds = time.perf_counter() - started
    return {
        "provider_per_s": PROVIDER_CALLS / provider_seconds,
        "variants_per_s": PROVIDER_CALLS / variants_seconds,
    }


def main() -> None:
    asyncio.run(run(wrk_arguments(__doc__.splitlines()[0], rounds=2)))


async def run(args: argparse.Namespace) -> None:
    async with scratch_database(args.postgres_url) as db_url:
        await seed(db_url)
        await asyncio.sleep(2.5)  # the seeded A/B test goes live 2 s after seeding
        results = serve_and_drive(db_url, args)
        provider = await provider_rate(db_url)
    report(results, provider, args)


def serve_and_drive(db_url: str, args: argparse.Namespace) -> dict[str, list[dict[str, float]]]:
    env = {"FLAGGERY_DB_URL": db_url, "FLAGGERY_ADMIN_MODE": "false"}
    ports = {"plain": free_port(), "cors": free_port()}
    base = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    results: dict[str, list[dict[str, float]]] = {}
    with contextlib.ExitStack() as stack:
        stack.enter_context(
            server(flaggery_command(ports["plain"], args.workers), env, base["plain"] + "/readyz")
        )
        cors_env = {**env, "FLAGGERY_CORS_ORIGINS": "https://app.example.com"}
        stack.enter_context(
            server(
                flaggery_command(ports["cors"], args.workers), cors_env, base["cors"] + "/readyz"
            )
        )
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        values = {"subjects": SUBJECTS, "features": FEATURES}
        etags = bulk_etags(base["plain"], ETAG_SUBJECTS)
        check_not_modified(base["plain"], etags)
        quoted = ",".join("'" + etag + "'" for etag in etags)
        ids = f"math.random(1, {SUBJECTS})"
        scripts = {
            "flags": (base["plain"], FLAGS_SCRIPT % values),
            "flags+cors": (base["cors"], FLAGS_SCRIPT % values),
            "key-flags": (base["plain"], KEY_FLAGS_SCRIPT),
            "ofrep": (base["plain"], SINGLE_SCRIPT % values),
            "ofrep-uuids": (base["plain"], SINGLE_UUID_SCRIPT % values),
            "ofrep-context": (base["plain"], CONTEXT_SCRIPT % values),
            "bulk": (base["plain"], BULK_SCRIPT % {"key": ids}),
            "bulk-uuids": (base["plain"], BULK_SCRIPT % {"key": "uuid()"}),
            "ofrep-304": (base["plain"], BULK_304_SCRIPT % {"etags": quoted}),
        }
        results.update({name: [] for name in scripts})
        for round_number in range(1, args.rounds + 1):
            for name, (url, text) in scripts.items():
                script = workdir / f"{name}.lua"
                script.write_text(text)
                outcome = wrk(url, script, args)  # wrk counts only statuses >= 400 as errors
                outcome["load_average"] = round(os.getloadavg()[0], 2)
                results[name].append(outcome)
                print(
                    f"round {round_number} {name:<13} {outcome['rps']:>10,.0f} req/s"
                    f"  (load average {outcome['load_average']:.2f})",
                    flush=True,
                )
    return results


def report(
    results: dict[str, list[dict[str, float]]], provider: dict[str, float], args: argparse.Namespace
) -> None:
    best = {name: max(runs, key=lambda r: r["rps"]) for name, runs in results.items()}
    flags = best["flags"]["rps"]
    print()
    print(f"{'route':<14}{'req/s (best)':>14}{'p50 ms':>9}{'p99 ms':>9}{'x flags':>9}{'load':>7}")
    for name, run in best.items():
        print(
            f"{name:<14}{run['rps']:>14,.0f}{run.get('p50_ms', 0):>9.3f}"
            f"{run.get('p99_ms', 0):>9.3f}{run['rps'] / flags:>9.2f}{run['load_average']:>7.2f}"
        )
    print(
        f"\nFlaggeryProvider.resolve_string_details: {provider['provider_per_s']:,.0f} calls/s "
        f"(ev.variants() in the same run: {provider['variants_per_s']:,.0f}/s)"
    )
    summary = {
        "benchmark": "ofrep",
        "workers": args.workers,
        "connections": args.connections,
        "duration_s": args.duration,
        "rounds": args.rounds,
        "runs": results,
        "load_average": round(os.getloadavg()[0], 2),
        "ratio_ofrep_single": round(best["ofrep"]["rps"] / flags, 3),
        "ratio_ofrep_single_uuids": round(best["ofrep-uuids"]["rps"] / flags, 3),
        "ratio_ofrep_single_context": round(best["ofrep-context"]["rps"] / flags, 3),
        "ratio_ofrep_bulk": round(best["bulk"]["rps"] / flags, 3),
        "ratio_ofrep_bulk_uuids": round(best["bulk-uuids"]["rps"] / flags, 3),
        "ratio_ofrep_bulk_304": round(best["ofrep-304"]["rps"] / flags, 3),
        "ratio_ofrep_uuids_to_ids": round(best["ofrep-uuids"]["rps"] / best["ofrep"]["rps"], 3),
        "ratio_key_flags": round(best["key-flags"]["rps"] / flags, 3),
        "ratio_flags_with_cors": round(best["flags+cors"]["rps"] / flags, 3),
        **{key: round(value) for key, value in provider.items()},
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
