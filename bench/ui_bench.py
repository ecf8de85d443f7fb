"""Dashboard page latency at issue 13's sizes: 1,000 features, 100 groups, 100,000 subjects.

    python bench/ui_bench.py                  # PostgreSQL on 127.0.0.1
    python bench/ui_bench.py --subjects 20000

Seeds a scratch database through the store (1,000 features with two variants and a default,
200 rollouts, 100 groups, one of them with 2,000 members, 3 A/B tests), starts the app in
process (admin mode, no token) and times each page over httpx's ASGI transport: the server's
own time, no network. Medians and p95 of 20 requests per page, after one warm-up each, and
the p95 of this process's CPU time (process_time: the app's work, not the database's, and
much less disturbed by a busy machine than wall-clock time).
Target: every page under 100 ms. Creates and drops its own database. Prints a table and one
JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, datetime, timedelta

import httpx
from report import print_measures
from seed import SERVER_URL, scratch_database

from flaggery.http.app import create_app
from flaggery.settings import Settings
from flaggery.store.repository import AsyncFlaggery

PAGES = [
    "/ui/features",
    "/ui/features?page=20",
    "/ui/features?q=feature-09",
    "/ui/features/feature-0500",
    "/ui/features/feature-0500/preview?percent=30",
    "/ui/abtests",
    "/ui/abtests/form?groups=2&pairs=1&g0.name=a&add=group",
    "/ui/groups",
    "/ui/groups/group-000",
    "/ui/subjects?id=99999",
    "/ui/buckets",
    "/ui/history",
    "/ui/history?feature=feature-0001",
    "/ui/history?group=group-000",
    "/ui/history?group=group-000&before=3000",
    "/ui/history?subject=5",
    "/ui/health",
]
ROUNDS = 20


async def seed(url: str, subjects: int) -> None:
    async with AsyncFlaggery.from_db_url(url) as store:
        await store.upgrade_db()
        await store.increase_buckets(100)
        await store.add_subjects([(i, 1 + i % 9) for i in range(subjects)])
        for index in range(1_000):
            name = f"feature-{index:04d}"
            await store.add_feature(name)
            await store.add_variant("off", name, make_default=True)
            await store.add_variant("on", name)
            if index % 5 == 0:
                await store.add_rollout("on", name)
                await store.set_rollout_proportion(name, (index % 100) / 100)
        for index in range(100):
            await store.add_group(f"group-{index:03d}")
        for subject in range(2_000):
            await store.add_subject_to_group(subject, "group-000")
        end = datetime.now(UTC) + timedelta(days=30)
        for index in range(3):
            feature = f"feature-{index + 1:04d}"
            groups = {"a": {feature: "off"}, "b": {feature: "on"}}
            await store.add_abtest(f"test-{index}", None, end, groups)


async def time_pages(url: str) -> dict[str, float]:
    app = create_app(Settings(db_url=url, admin_mode=True))
    result: dict[str, float] = {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            for page in PAGES:
                (await client.get(page)).raise_for_status()
                times, cpu = [], []
                for _ in range(ROUNDS):
                    start, started_cpu = time.perf_counter(), time.process_time()
                    response = await client.get(page)
                    times.append((time.perf_counter() - start) * 1000)
                    cpu.append((time.process_time() - started_cpu) * 1000)
                    response.raise_for_status()
                times.sort()
                cpu.sort()
                result[f"{page} p50_ms"] = round(statistics.median(times), 1)
                result[f"{page} p95_ms"] = round(times[int(len(times) * 0.95) - 1], 1)
                result[f"{page} cpu_p95_ms"] = round(cpu[int(len(cpu) * 0.95) - 1], 1)
    return result


async def main_async(args: argparse.Namespace) -> dict[str, float]:
    async with scratch_database(args.url) as scratch:
        started = time.perf_counter()
        await seed(scratch, args.subjects)
        print(f"seeded in {time.perf_counter() - started:.0f} s")
        return await time_pages(scratch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=SERVER_URL)
    parser.add_argument("--subjects", type=int, default=100_000)
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    print_measures("ui", {"subjects": args.subjects, **result})


if __name__ == "__main__":
    main()
