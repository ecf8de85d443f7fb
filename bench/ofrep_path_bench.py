"""Where an OFREP request's time goes, in process: the whole flaggery stack (its protocol, the
OFREP fast path, the snapshot) per kind of request, against the subject flags route.

    python bench/ofrep_path_bench.py [--requests 20000] [--rounds 5] [--profile KIND]

The benchmark dataset (bench/seed.py: 10,000 subjects, 100 buckets, 20 features) is seeded
into a scratch PostgreSQL database (no polling feed beside the measure, as SQLite would have),
with the ten rule groups and three audiences of bench/rule_set.py in a second one. Each kind
of request is fed over the fake transport of protocol_bench.py, one keep-alive connection,
one request at a time, in rotating order over ``--rounds`` rounds, in CPU seconds of this
thread: a ratio that moves far less with the machine's load than wrk's
(bench/ofrep_bench.py), and excludes the kernel and wrk, which cost every route about the
same (so it is lower than wrk's ratio when the route is slower). Kinds:

  flags          GET /v1/subjects/{id}/flags (the baseline)
  key-flags      GET /v1/keys/{new UUID}/flags
  ofrep-ids      POST /ofrep/v1/evaluate/flags/{feature}, targetingKey a registered id
  ofrep-uuids    the same, a new UUID per request
  ofrep-context  the same, a registered id and the eleven-attribute context of
                 ofrep_rules_bench.py, on the snapshot without rules
  ofrep-rules    ofrep-context on the snapshot with the rule groups
  bulk-ids       POST /ofrep/v1/evaluate/flags, registered ids (200)
  bulk-uuids     the same, new UUIDs (200)
  bulk-304       the same, registered ids with their own ETag (304)

The process runs with a server's garbage-collector settings (`flaggery.http.gc_tuning`, and
everything alive once started frozen), as a server process has them (`app_from_env`):
without them a young collection every 700 allocations scans the unfrozen snapshot too, and
every kind of request costs about a third more CPU.

The kinds of new keys and contexts (`FRESH`) send a batch drawn afresh in every round, so
that every key and context is new to the server (a batch sent again would be answered from
the caches its first round filled); the others send the same batch in every round, as clients
that come back.

``--profile KIND`` prints cProfile's top functions of one more round of that kind.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from flags_path_bench import protocol_for
from rule_set import AUDIENCES, RULES
from seed import FEATURES, SUBJECTS, feature_name, scratch_database, seed

from flaggery.http.app import create_app
from flaggery.http.gc_tuning import tune_for_serving
from flaggery.settings import Settings
from flaggery.store.repository import AsyncFlaggery

KINDS = (
    "flags",
    "key-flags",
    "ofrep-ids",
    "ofrep-uuids",
    "ofrep-context",
    "ofrep-rules",
    "bulk-ids",
    "bulk-uuids",
    "bulk-304",
)
FRESH = frozenset({"key-flags", "ofrep-uuids", "ofrep-context", "ofrep-rules", "bulk-uuids"})
"""Kinds whose keys or contexts are drawn afresh for every round (`requests`' seed)."""
HEAD = b"Host: localhost\r\nContent-Type: application/json\r\n"
COUNTRIES = ["DE", "AT", "CH", "FR", "US", "GB", "JP", "BR"]


def _post(path: str, body: bytes, extra: bytes = b"") -> bytes:
    length = b"Content-Length: %d\r\n" % len(body)
    return b"POST " + path.encode() + b" HTTP/1.1\r\n" + HEAD + extra + length + b"\r\n" + body


def _context(rng: random.Random, key: str) -> bytes:
    """One of ofrep_rules_bench.py's contexts: eleven attributes."""
    context = {
        "targetingKey": key,
        "country": rng.choice(COUNTRIES),
        "version": f"{rng.randint(1, 3)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}",
        "email": rng.choice(["ann@example.com", "QA+bob@shop.io", "eve@mail.net"]),
        "plan": rng.choice(["free", "pro", "team", "enterprise"]),
        "account": f"acct-{rng.randint(0, 1999):04d}",
        "remoteAddress": rng.choice(["10.1.2.3", "192.168.1.1", "2001:db8::1"]),
        "sessions": rng.randint(0, 1999),
        "platform": rng.choice(["android-14", "ios-17", "web"]),
        "channel": rng.choice(["beta", "stable"]),
        "locale": rng.choice(["de-DE", "en-US"]),
    }
    return json.dumps({"context": context}, separators=(",", ":")).encode()


def requests(kind: str, count: int, etags: dict[int, bytes], seed: int = 25) -> list[bytes]:
    rng = random.Random(seed)
    ids = [rng.randint(1, SUBJECTS) for _ in range(count)]

    def new_uuid() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    def single(key: str, body: bytes | None = None) -> bytes:
        feature = feature_name(rng.randrange(FEATURES))
        body = body or b'{"context":{"targetingKey":"%s"}}' % key.encode()
        return _post(f"/ofrep/v1/evaluate/flags/{feature}", body)

    def bulk(key: str, extra: bytes = b"") -> bytes:
        body = b'{"context":{"targetingKey":"%s"}}' % key.encode()
        return _post("/ofrep/v1/evaluate/flags", body, extra)

    make: dict[str, Callable[[int], bytes]] = {
        "flags": lambda i: b"GET /v1/subjects/%d/flags HTTP/1.1\r\nHost: localhost\r\n\r\n" % i,
        "key-flags": lambda i: b"GET /v1/keys/%s/flags HTTP/1.1\r\nHost: localhost\r\n\r\n"
        % new_uuid().encode(),
        "ofrep-ids": lambda i: single(str(i)),
        "ofrep-uuids": lambda i: single(new_uuid()),
        "ofrep-context": lambda i: single("", _context(rng, str(i))),
        "ofrep-rules": lambda i: single("", _context(rng, str(i))),
        "bulk-ids": lambda i: bulk(str(i)),
        "bulk-uuids": lambda i: bulk(new_uuid()),
        "bulk-304": lambda i: bulk(str(i % len(etags) + 1), b"If-None-Match: %s\r\n"
                                   % etags[i % len(etags) + 1]),
    }  # fmt: skip
    return [make[kind](subject_id) for subject_id in ids]


async def requests_per_second(app: Any, batch: list[bytes]) -> float:
    """Requests answered per CPU second, one keep-alive connection, one request at a time."""
    protocol, transport = protocol_for(app, True)
    started = time.thread_time()
    for request in batch:
        protocol.data_received(request)
        await asyncio.sleep(0)  # a request through ASGI: its task runs and answers
        await asyncio.sleep(0)
    elapsed = time.thread_time() - started
    assert transport.written >= len(batch), f"only {transport.written} responses"
    protocol.connection_lost(None)
    return len(batch) / elapsed


async def bulk_etags(app: Any, count: int) -> dict[int, bytes]:
    """Subject id -> its bulk ETag, read through the ASGI app."""
    import httpx

    etags = {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        for subject_id in range(1, count + 1):
            context = {"context": {"targetingKey": str(subject_id)}}
            response = await client.post("/ofrep/v1/evaluate/flags", json=context)
            etags[subject_id] = response.headers["etag"].encode()
    return etags


async def compare(apps: dict[str, Any], args: argparse.Namespace) -> None:
    etags = await bulk_etags(apps["plain"], 500)
    kinds = tuple(kind for kind in KINDS if kind in args.kinds or kind == "flags")
    batches = {kind: requests(kind, args.requests, etags) for kind in kinds}

    def batch_of(kind: str, round_number: int) -> list[bytes]:
        # New keys and contexts must be new in every round: a batch sent again would find
        # them in the caches its first round filled (the key's evaluation, the body's answers).
        if kind in FRESH:
            return requests(kind, args.requests, etags, seed=100 + round_number)
        return batches[kind]

    app_of = {kind: apps["rules" if kind == "ofrep-rules" else "plain"] for kind in kinds}
    for kind in kinds:  # warm views, answers and caches, as a server that has run a while
        # (other random draws: the measured UUIDs stay new)
        await requests_per_second(app_of[kind], requests(kind, args.requests, etags, seed=26))
    rates: dict[str, list[float]] = {kind: [] for kind in kinds}
    for round_number in range(args.rounds):
        shift = round_number % len(kinds)
        for kind in kinds[shift:] + kinds[:shift]:  # rotating order: no order effect
            batch = batch_of(kind, round_number)
            rates[kind].append(await requests_per_second(app_of[kind], batch))
    median = {kind: statistics.median(values) for kind, values in rates.items()}
    flags = median["flags"]
    load = os.getloadavg()[0]
    print(f"{'kind':<15}{'req/CPU s':>12}{'us/req':>9}{'x flags':>9}   (load average {load:.2f})")
    for kind, rate in median.items():
        print(f"{kind:<15}{rate:>12,.0f}{1e6 / rate:>9.1f}{rate / flags:>9.2f}")
    pairs = {
        "ratio_key_flags": ("key-flags", "flags"),
        "ratio_ofrep_single_ids": ("ofrep-ids", "flags"),
        "ratio_ofrep_single_uuids": ("ofrep-uuids", "flags"),
        "ratio_ofrep_single_context": ("ofrep-context", "flags"),
        "ratio_ofrep_bulk_ids": ("bulk-ids", "flags"),
        "ratio_ofrep_bulk_uuids": ("bulk-uuids", "flags"),
        "ratio_ofrep_bulk_304": ("bulk-304", "flags"),
        "ratio_ofrep_uuids_to_ids": ("ofrep-uuids", "ofrep-ids"),
        "ratio_ofrep_rules_to_no_rules": ("ofrep-rules", "ofrep-context"),
    }
    ratios = {
        name: median[kind] / median[base]
        for name, (kind, base) in pairs.items()
        if kind in median and base in median
    }
    for name, ratio in ratios.items():
        print(f"{name:<32}{ratio:>8.2f}")
    summary = {
        "benchmark": "ofrep_path",
        "requests": args.requests,
        "rounds": args.rounds,
        "load_average": round(load, 2),
        "req_per_cpu_s": {kind: round(rate) for kind, rate in median.items()},
        **{name: round(ratio, 3) for name, ratio in ratios.items()},
    }
    print(json.dumps(summary))
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        await requests_per_second(app_of[args.profile], batch_of(args.profile, args.rounds))
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(args.profile_lines)


async def add_rules(db_url: str) -> None:
    """ofrep_rules_bench.py's rule groups (each overriding one feature) and audiences."""
    async with AsyncFlaggery.from_db_url(db_url) as store:
        for index, (name, rule) in enumerate(RULES.items()):
            await store.add_group(name)
            await store.set_group_rule(name, rule)
            await store.add_group_override(name, feature_name(index), "B")
        rolled_out = [feature_name(i) for i in range(0, FEATURES, 2)]
        for feature, audience in zip(rolled_out, AUDIENCES, strict=False):
            await store.set_rollout(feature, audience=audience)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", choices=KINDS)
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--profile-lines", type=int, default=30)
    args = parser.parse_args()
    tune_for_serving()
    async with (
        scratch_database(args.postgres_url) as plain,
        scratch_database(args.postgres_url) as ruled,
    ):
        apps = {}
        for name, url in (("plain", plain), ("rules", ruled)):
            await seed(url)
            if name == "rules":
                await add_rules(url)
            # As a server process runs (flaggery.http.app.app_from_env): the young
            # generation's threshold raised, and what is alive once started frozen.
            settings = Settings.from_env({}, db_url=url, admin_mode=False)
            apps[name] = create_app(settings, freeze_gc=True)
        async with (
            apps["plain"].router.lifespan_context(apps["plain"]),
            apps["rules"].router.lifespan_context(apps["rules"]),
        ):
            await asyncio.sleep(2.5)  # the seeded A/B test goes live 2 s after seeding
            await compare(apps, args)


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
