"""Two admin processes writing at once: every invariant holds, every acknowledged write is there.

Each process (tests/live/admin_writer.py) issues 500 mixed writes as fast as it can, both
starting at the same moment, against the same database; an Evaluator follows them all. The
database alone serializes them (flaggery.store.database), so afterwards the rows must be
consistent, the change log must hold exactly one row per acknowledged write, each worker's own
entities must be exactly what its acknowledged writes made of them, and both a snapshot built
from scratch and the one the Evaluator patched incrementally must resolve like the rows.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from flaggery.clock import utc_now
from flaggery.engine import build_snapshot
from flaggery.live.evaluator import Evaluator
from flaggery.store.loader import load_state
from flaggery.store.repository import AsyncFlaggery
from tests.dbcheck import check_invariants, naive_variants_all
from tests.fakes import FakeClock
from tests.live.admin_writer import SHARED_GROUP, Owned, first_subject_id

pytestmark = pytest.mark.slow(seconds=15)

ADMINS = 2
WRITES_PER_ADMIN = 500
ROOT = Path(__file__).resolve().parents[2]
PROCESS_TIMEOUT_SECONDS = 120
INITIAL_BUCKETS = 6

Record = dict[str, Any]


async def set_up_shared_entities(store: AsyncFlaggery) -> None:
    """What both workers build on: buckets, a rolled-out feature, a live A/B test, a group."""
    await store.increase_buckets(INITIAL_BUCKETS)
    await store.add_feature("checkout")
    await store.add_variant("old", "checkout", make_default=True)
    await store.add_variant("new", "checkout")
    await store.add_rollout("new", "checkout")
    await store.set_rollout_proportion("checkout", 1)
    await store.add_feature("search")
    await store.add_variant("classic", "search", make_default=True)
    await store.add_variant("semantic", "search")
    now = utc_now()
    groups = {"control": {"search": "classic"}, "treatment": {"search": "semantic"}}
    # Live during the whole run: created by an admin whose clock is two hours behind.
    async with AsyncFlaggery.from_db_url(
        store.database.url, clock=FakeClock(now - timedelta(hours=2))
    ) as earlier:
        await earlier.add_abtest(
            "search-test", now - timedelta(hours=1), now + timedelta(days=1), groups
        )
    await store.add_group(SHARED_GROUP)
    await store.add_group_override(SHARED_GROUP, "checkout", "old")


async def run_admins(db_url: str, directory: Path) -> list[list[Record]]:
    """Start the workers, release them together, and return each one's log."""
    logs = [directory / f"admin-{worker}.jsonl" for worker in range(ADMINS)]
    processes = [
        await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "tests.live.admin_writer"),
            *(db_url, str(worker), str(WRITES_PER_ADMIN), str(log)),
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for worker, log in enumerate(logs)
    ]
    for process in processes:
        assert process.stdout is not None
        assert await process.stdout.readline() == b"ready\n"
    for process in processes:
        assert process.stdin is not None
        process.stdin.write(b"go\n")
        await process.stdin.drain()
    codes = await asyncio.wait_for(
        asyncio.gather(*(process.wait() for process in processes)), PROCESS_TIMEOUT_SECONDS
    )
    assert codes == [0] * ADMINS
    return [[json.loads(line) for line in log.read_text().splitlines()] for log in logs]


async def test_two_admin_processes_writing_at_once_keep_every_invariant(
    db_url: str, tmp_path: Path
) -> None:
    async with AsyncFlaggery.from_db_url(db_url) as store:
        await set_up_shared_entities(store)
        revision_before = await store.revision()
        async with Evaluator.from_db_url(db_url, poll_interval=0.05) as ev:
            logs = await run_admins(db_url, tmp_path)
            revision = await store.revision()
            await ev.wait_for_revision(revision, timeout=10)
            followed = ev.snapshot

        acknowledged = [[r for r in log if r["error"] is None] for log in logs]
        for log in logs:
            assert len(log) == WRITES_PER_ADMIN
            assert [r["error"] for r in log] == [r["expected"] for r in log], "only meant failures"
            assert any(r["expected"] for r in log), "some writes fail on purpose"
        assert_ran_together(logs)
        assert revision == revision_before + sum(map(len, acknowledged))

        async with store.database.read() as conn:
            await check_invariants(conn)
            assert await operations_after(conn, revision_before) == Counter(
                r["op"] for log in acknowledged for r in log
            ), "one change-log row per acknowledged write, of its operation"
            owned = [replay(log) for log in acknowledged]
            for worker, entities in enumerate(owned):
                await assert_owned_entities_present(conn, worker, entities)
            (buckets,) = (await conn.execute(text("SELECT COUNT(*) FROM buckets"))).one()
            assert buckets == INITIAL_BUCKETS + sum(entities.new_buckets for entities in owned)
            now = utc_now()
            expected = await naive_variants_all(conn, now)

        rebuilt = build_snapshot(await load_state(store.database), now)
        for snapshot in (rebuilt, followed.at(now)):
            assert snapshot.revision == revision
            assert {subject: dict(snapshot.variants(subject)) for subject in expected} == expected
            assert snapshot.subject_count == len(expected)


def assert_ran_together(logs: list[list[Record]]) -> None:
    """The workers wrote at the same time for most of their runs, and say how fast."""
    spans = [(log[0]["at"], log[-1]["at"]) for log in logs]
    together = min(end for _, end in spans) - max(start for start, _ in spans)
    shortest = min(end - start for start, end in spans)
    print(
        "\nconcurrent admins:",
        json.dumps(
            {
                "acknowledged": [sum(r["error"] is None for r in log) for log in logs],
                "failed_on_purpose": [sum(r["error"] is not None for r in log) for log in logs],
                "seconds": [round(end - start, 2) for start, end in spans],
                "seconds_together": round(together, 2),
            }
        ),
    )
    assert together > shortest / 2


def replay(log: list[Record]) -> Owned:
    owned = Owned()
    for record in log:
        owned.apply(record["op"], record["args"])
    return owned


async def operations_after(conn: AsyncConnection, revision: int) -> Counter[str]:
    rows = await conn.execute(
        text("SELECT operation FROM change_log WHERE revision > :revision"), {"revision": revision}
    )
    return Counter(operation for (operation,) in rows)


async def assert_owned_entities_present(conn: AsyncConnection, worker: int, owned: Owned) -> None:
    """The worker's subjects, memberships, features, rollouts and overrides, exactly."""
    low, high = first_subject_id(worker), first_subject_id(worker + 1)
    in_range = {"low": low, "high": high}
    subjects = await conn.execute(
        text("SELECT id, weight FROM subjects WHERE id > :low AND id < :high"), in_range
    )
    assert dict(subjects.all()) == owned.subjects

    memberships: dict[int, list[str]] = {subject: [] for subject in owned.subjects}
    for subject, group in await conn.execute(
        text(
            'SELECT subject_id, "group" FROM group_members '
            "WHERE subject_id > :low AND subject_id < :high ORDER BY joined"
        ),
        in_range,
    ):
        memberships[subject].append(group)
    assert memberships == owned.groups_of

    prefix = {"prefix": f"w{worker}-%"}
    variants: dict[str, list[str]] = {feature: [] for feature in owned.variants}
    for feature, variant in await conn.execute(
        text("SELECT feature, name FROM variants WHERE feature LIKE :prefix"), prefix
    ):
        variants[feature].append(variant)
    assert {f: sorted(v) for f, v in variants.items()} == {
        f: sorted(v) for f, v in owned.variants.items()
    }
    defaults = await conn.execute(
        text(
            "SELECT name, default_variant FROM features "
            "WHERE name LIKE :prefix AND default_variant IS NOT NULL"
        ),
        prefix,
    )
    assert dict(defaults.all()) == owned.defaults
    rollouts = await conn.execute(
        text("SELECT feature, variant, proportion FROM rollouts WHERE feature LIKE :prefix"),
        prefix,
    )
    assert {feature: (variant, p) for feature, variant, p in rollouts} == owned.rollouts
    overrides = await conn.execute(
        text('SELECT "group", feature, variant FROM group_overrides WHERE "group" = :group'),
        {"group": f"w{worker}"},
    )
    found: dict[str, dict[str, str]] = {group: {} for group in owned.overrides}
    for group, feature, variant in overrides:
        found[group][feature] = variant
    assert found == owned.overrides
