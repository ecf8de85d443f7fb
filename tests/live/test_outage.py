"""PostgreSQL stops and starts again: reads never fail, writes fail fast, replicas resync.

These run against a private cluster (tests/live/conftest.py) that they really stop, and print
what they measured (run with ``-s`` to see it).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from flaggery import errors
from flaggery.clock import utc_now
from flaggery.live.evaluator import Evaluator
from flaggery.live.snapshot_file import read_snapshot_file
from flaggery.store.database import CONNECT_TIMEOUT_SECONDS, OUTAGES
from flaggery.store.repository import AsyncFlaggery
from tests.live.helpers import assert_matches_database, eventually, has_subject, seed
from tests.pgcluster import PrivateCluster

pytestmark = pytest.mark.slow

OUTAGE_SECONDS = 2.0
FAIL_FAST_SECONDS = 3.0
# A frozen server answers nothing: the checkout gives up after CONNECT_TIMEOUT_SECONDS, then
# closing the dead connection waits its own two seconds.
FAIL_FROZEN_SECONDS = CONNECT_TIMEOUT_SECONDS + 3.0
RESYNC_TIMEOUT_SECONDS = 10.0


class ReadLoop:
    """Reads flags as fast as the event loop allows, counting answers and failures."""

    def __init__(self, ev: Evaluator, subject_ids: range) -> None:
        self._ev = ev
        self._subject_ids = subject_ids
        self._running = True
        self.served = 0
        self.failed = 0

    async def run(self) -> None:
        while self._running:
            for subject_id in self._subject_ids:
                try:
                    self._ev.flags_json(subject_id)
                except Exception:
                    self.failed += 1
                else:
                    self.served += 1
            await asyncio.sleep(0)  # let the feed and the writes run between batches

    def stop(self) -> None:
        self._running = False


def report(name: str, **figures: float | int) -> None:
    rounded = {key: round(value, 3) for key, value in figures.items()}
    print(f"\n{name}: {json.dumps(rounded)}")


async def test_reads_never_fail_while_postgres_restarts(
    cluster: PrivateCluster, cluster_db_url: str
) -> None:
    loop = asyncio.get_running_loop()
    async with AsyncFlaggery.from_db_url(cluster_db_url) as store:
        await seed(store)
        async with Evaluator.from_db_url(cluster_db_url) as ev:
            reads = ReadLoop(ev, range(50))
            reader = asyncio.create_task(reads.run())
            await asyncio.sleep(0.2)
            assert ev.connected and not ev.stale

            await asyncio.to_thread(cluster.stop)
            stopped_at, served_before = loop.time(), reads.served
            await eventually(lambda: ev.stale)
            assert not ev.connected

            attempt_at = loop.time()
            with pytest.raises(errors.DatabaseUnavailable, match="Retry later"):
                await store.add_subject(7000, 1)
            write_failed_after = loop.time() - attempt_at
            assert write_failed_after < FAIL_FAST_SECONDS
            with pytest.raises(errors.DatabaseUnavailable):
                await store.get_subject(3)

            await asyncio.sleep(max(OUTAGE_SECONDS - (loop.time() - stopped_at), 0))
            age_in_outage = ev.age_seconds
            assert age_in_outage is not None and age_in_outage >= OUTAGE_SECONDS * 0.9
            await asyncio.to_thread(cluster.start)
            restarted_at, served_during = loop.time(), reads.served - served_before

            await store.add_subject(7001, 2)
            written_at = loop.time()
            await eventually(lambda: has_subject(ev, 7001), timeout=RESYNC_TIMEOUT_SECONDS)
            visible_at = loop.time()
            assert ev.connected and not ev.stale
            assert ev.age_seconds is not None and ev.age_seconds < 1.0

            reads.stop()
            await reader
            assert reads.failed == 0
            assert served_during > 0
            await ev.wait_for_revision(await store.revision(), timeout=5)
            await assert_matches_database(ev, store, utc_now())
            assert not has_subject(ev, 7000), "the write that failed left no trace"
            report(
                "restart",
                reads_served=reads.served,
                reads_served_during_outage=served_during,
                reads_failed=reads.failed,
                outage_seconds=restarted_at - stopped_at,
                failed_write_seconds=write_failed_after,
                age_seconds_in_outage=age_in_outage,
                write_visible_after_ack_seconds=visible_at - written_at,
                write_visible_after_restart_seconds=visible_at - restarted_at,
                reconnects=ev.counts.reconnects,
            )


async def test_writes_fail_fast_while_postgres_is_frozen(
    cluster: PrivateCluster, cluster_db_url: str
) -> None:
    loop = asyncio.get_running_loop()
    async with AsyncFlaggery.from_db_url(cluster_db_url) as store:
        await seed(store)
        async with Evaluator.from_db_url(cluster_db_url) as ev:
            reads = ReadLoop(ev, range(50))
            reader = asyncio.create_task(reads.run())
            await asyncio.to_thread(cluster.freeze)
            try:
                attempt_at = loop.time()
                with pytest.raises(errors.DatabaseUnavailable, match="Retry later"):
                    await store.add_subject(7000, 1)
                write_failed_after = loop.time() - attempt_at
            finally:
                await asyncio.to_thread(cluster.thaw)
            assert write_failed_after < FAIL_FROZEN_SECONDS

            await store.add_subject(7001, 2)
            written_at = loop.time()
            await eventually(lambda: has_subject(ev, 7001), timeout=RESYNC_TIMEOUT_SECONDS)
            visible_after = loop.time() - written_at
            reads.stop()
            await reader
            assert reads.failed == 0
            await assert_matches_database(ev, store, utc_now())
            report(
                "frozen",
                reads_served=reads.served,
                reads_failed=reads.failed,
                failed_write_seconds=write_failed_after,
                write_visible_after_ack_seconds=visible_after,
            )


async def test_a_replica_starting_without_postgres_serves_the_snapshot_file(
    cluster: PrivateCluster, cluster_db_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "snapshot.flaggery"
    async with AsyncFlaggery.from_db_url(cluster_db_url) as store:
        await seed(store)
        await store.add_group("staff")
        await store.add_subject_to_group(7, "staff")
        await store.add_group_override("staff", "checkout", "new")
        revision = await store.revision()
        async with Evaluator.from_db_url(
            cluster_db_url, snapshot_path=path, snapshot_interval=0.05
        ) as ev:
            await eventually(lambda: _saved_revision(path) == revision)
            expected = {subject_id: ev.flags_json(subject_id) for subject_id in range(50)}

        await asyncio.to_thread(cluster.stop)
        await asyncio.sleep(0.3)
        without_file = Evaluator.from_db_url(cluster_db_url)
        with pytest.raises(OUTAGES):
            await without_file.start()
        await without_file.stop()

        async with Evaluator.from_db_url(
            cluster_db_url, snapshot_path=path, snapshot_interval=0.05
        ) as cold:
            assert cold.stale and not cold.connected
            age = cold.age_seconds
            assert age is not None and age >= 0.3
            assert cold.revision == revision
            assert {subject_id: cold.flags_json(subject_id) for subject_id in range(50)} == expected
            assert cold.variant(7, "checkout") == "new"

            await asyncio.to_thread(cluster.start)
            restarted_at = asyncio.get_running_loop().time()
            await store.add_subject(8000, 4)
            await cold.wait_for_revision(await store.revision(), timeout=RESYNC_TIMEOUT_SECONDS)
            caught_up_after = asyncio.get_running_loop().time() - restarted_at
            assert cold.connected and not cold.stale
            await assert_matches_database(cold, store, utc_now())
            await eventually(lambda: _saved_revision(path) == cold.revision)
            report("cold start", file_age_seconds=age, caught_up_after_restart=caught_up_after)


def _saved_revision(path: Path) -> int | None:
    saved = read_snapshot_file(path)
    return None if saved is None else saved.state.revision
