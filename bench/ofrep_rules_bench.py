"""OFREP single-flag evaluation with an evaluation context: rules against no rules, same run.

    python bench/ofrep_rules_bench.py [--duration 10] [--rounds 3] [--workers 2]

Two scratch databases with the benchmark dataset (bench/seed.py: 10,000 subjects, 100
buckets, 20 features, rollouts, groups, a live A/B test); the second also has the ten rule
groups of bench/rule_set.py (20 constraints: 2 REGEX, 2 SEMVER, an IN of 1,000 values, an
IN_CIDR), each overriding one feature, and three rollouts limited to an audience. A read-only
server on each; wrk posts ``/ofrep/v1/evaluate/flags/{feature}`` with a context of eleven
attributes (random subject as targetingKey, country, version, email, ...) to both, in
alternating rounds. Target (issue 20): with rules at least 0.8x without, same run.
Prints a table and one JSON line with the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from http_bench import flaggery_command, free_port, server, wrk, wrk_arguments  # noqa: E402
from rule_set import AUDIENCES, RULES  # noqa: E402
from seed import FEATURES, SUBJECTS, feature_name, scratch_database, seed  # noqa: E402

from flaggery.store.repository import AsyncFlaggery  # noqa: E402

SCRIPT = """
math.randomseed(os.time())
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local countries = {"DE", "AT", "CH", "FR", "US", "GB", "JP", "BR"}
local emails = {"ann@example.com", "QA+bob@shop.io", "eve@mail.net"}
local plans = {"free", "pro", "team", "enterprise"}
local addresses = {"10.1.2.3", "192.168.1.1", "2001:db8::1"}
local platforms = {"android-14", "ios-17", "web"}
local function pick(list) return list[math.random(1, #list)] end
request = function()
  local feature = string.format("feature_%%02d", math.random(0, %(features)d - 1))
  local body = string.format(
    '{"context":{"targetingKey":"%%d","country":"%%s","version":"%%d.%%d.%%d",' ..
    '"email":"%%s","plan":"%%s","account":"acct-%%04d","remoteAddress":"%%s",' ..
    '"sessions":%%d,"platform":"%%s","channel":"%%s","locale":"%%s"}}',
    math.random(1, %(subjects)d), pick(countries), math.random(1, 3), math.random(0, 9),
    math.random(0, 9), pick(emails), pick(plans), math.random(0, 1999), pick(addresses),
    math.random(0, 1999), pick(platforms), pick({"beta", "stable"}), pick({"de-DE", "en-US"}))
  return wrk.format(nil, "/ofrep/v1/evaluate/flags/" .. feature, nil, body)
end
"""


async def add_rules(db_url: str) -> None:
    """The ten rule groups, each overriding one feature, and three rollouts' audiences."""
    async with AsyncFlaggery.from_db_url(db_url) as store:
        for index, (name, rule) in enumerate(RULES.items()):
            await store.add_group(name)
            await store.set_group_rule(name, rule)
            await store.add_group_override(name, feature_name(index), "B")
        rolled_out = [feature_name(i) for i in range(0, FEATURES, 2)]
        for feature, audience in zip(rolled_out, AUDIENCES, strict=False):
            await store.set_rollout(feature, audience=audience)


async def run(args: argparse.Namespace) -> None:
    async with (
        scratch_database(args.postgres_url) as plain,
        scratch_database(args.postgres_url) as ruled,
    ):
        await seed(plain)
        await seed(ruled)
        await add_rules(ruled)
        await asyncio.sleep(2.5)  # the seeded A/B test goes live 2 s after seeding
        results = drive({"no rules": plain, "rules": ruled}, args)
    report(results, args)


def drive(databases: dict[str, str], args: argparse.Namespace) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {name: [] for name in databases}
    with contextlib.ExitStack() as stack:
        bases = {}
        for name, db_url in databases.items():
            port = free_port()
            env = {"FLAGGERY_DB_URL": db_url, "FLAGGERY_ADMIN_MODE": "false"}
            base = f"http://127.0.0.1:{port}"
            stack.enter_context(server(flaggery_command(port, args.workers), env, base + "/readyz"))
            bases[name] = base
        script = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "ofrep.lua"
        script.write_text(SCRIPT % {"features": FEATURES, "subjects": SUBJECTS})
        for round_number in range(1, args.rounds + 1):
            for name, base in bases.items():
                rps = wrk(base, script, args)["rps"]
                results[name].append(rps)
                print(f"round {round_number} {name:<9} {rps:>10,.0f} req/s", flush=True)
    return results


def report(results: dict[str, list[float]], args: argparse.Namespace) -> None:
    best = {name: max(runs) for name, runs in results.items()}
    ratio = best["rules"] / best["no rules"]
    print(f"\n{'snapshot':<10}{'req/s (best)':>14}")
    for name, rps in best.items():
        print(f"{name:<10}{rps:>14,.0f}")
    print(f"rules / no rules: {ratio:.2f}")
    summary = {
        "benchmark": "ofrep_rules",
        "workers": args.workers,
        "connections": args.connections,
        "duration_s": args.duration,
        "rounds": args.rounds,
        "runs": results,
        "ratio_rules": round(ratio, 3),
        "load_average": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(summary))


def main() -> None:
    asyncio.run(run(wrk_arguments(__doc__.splitlines()[0], rounds=3)))


if __name__ == "__main__":
    main()
