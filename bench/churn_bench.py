"""Group churn soak: do views, write-apply time and memory stay flat as history grows?

    python bench/churn_bench.py                  # 10,000 subjects, 3,000 join/leave cycles

Each cycle creates a one-off group, puts a subject in it, takes it out and removes the group:
four admin writes on PostgreSQL, which an Evaluator in this process follows through the
change feed (LISTEN/NOTIFY). At the start and the end the benchmark prints the snapshot's view
count, the time to apply a configuration write to it (median of 50, which re-resolves every
view) and this process's RSS; at the end also the same for a snapshot rebuilt from scratch
from the same state, the baseline: a long-running process should cost what a fresh one does.
``--keep-unused-views`` shows what happened before unused views were dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path

from report import print_measures
from seed import SERVER_URL, feature_name, scratch_database, seed

from flaggery import AsyncFlaggery, Evaluator
from flaggery.engine import Snapshot, build_snapshot, view_usage
from flaggery.engine.model import Change, FeatureFact

APPLY_SAMPLES = 50


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def config_apply_ms(snapshot: Snapshot) -> float:
    """Median time to apply a change of one feature's default: every view is re-resolved."""
    feature = snapshot.config.features[feature_name(0)]
    flipped = FeatureFact(feature.name, feature)  # same content, still a resolution fact
    change = Change(snapshot.revision + 1, "bench", (flipped,))
    now = snapshot.built_at
    for _ in range(APPLY_SAMPLES // 5):  # warm up caches and the allocator first
        snapshot.apply([change], now)
    samples = []
    for _ in range(APPLY_SAMPLES):
        started = time.perf_counter()
        snapshot.apply([change], now)
        samples.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(samples), 3)


async def churn(store: AsyncFlaggery, cycles: int, subjects: int) -> None:
    for cycle in range(cycles):
        group, subject = f"once-{cycle}", 1 + cycle % subjects  # seeded ids are 1..subjects
        await store.add_group(group)
        await store.add_subject_to_group(subject, group)
        await store.rm_subject_from_group(subject, group)
        await store.rm_group(group)


async def run(args: argparse.Namespace) -> dict[str, object]:
    async with scratch_database(args.url) as url:
        await seed(url, args.subjects)
        async with Evaluator.from_db_url(url) as ev, AsyncFlaggery.from_db_url(url) as store:
            start = ev.snapshot
            result: dict[str, object] = {
                "cycles": args.cycles,
                "views_start": start.view_count,
                "config_apply_ms_start": config_apply_ms(start),
                "rss_mib_start": round(rss_mib(), 1),
            }
            started = time.perf_counter()
            await churn(store, args.cycles, args.subjects)
            await ev.wait_for_revision(await store.revision(), timeout=30)
            end = ev.snapshot
            result["churn_seconds"] = round(time.perf_counter() - started, 1)
            result["full_reloads"] = ev.counts.full - 1
            result["views_end"] = end.view_count
            result["config_apply_ms_end"] = config_apply_ms(end)
            result["rss_mib_end"] = round(rss_mib(), 1)
            rebuilt = build_snapshot(end.to_state(), end.built_at)
            result["views_rebuilt"] = rebuilt.view_count
            result["config_apply_ms_rebuilt"] = config_apply_ms(rebuilt)
            ratio = result["config_apply_ms_end"] / result["config_apply_ms_rebuilt"]  # type: ignore[operator]
            result["apply_end_vs_rebuilt"] = round(ratio, 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=SERVER_URL)
    parser.add_argument("--subjects", type=int, default=10_000)
    parser.add_argument("--cycles", type=int, default=3_000)
    parser.add_argument(
        "--keep-unused-views",
        action="store_true",
        help="never drop unused views (the behaviour before they were dropped), for comparison",
    )
    args = parser.parse_args()
    if args.keep_unused_views:
        view_usage.MIN_UNUSED_VIEWS = 1 << 62
    print_measures("churn", asyncio.run(run(args)))


if __name__ == "__main__":
    main()
