"""A read-only replica on a PostgreSQL hot standby: a real streaming standby of a private
primary. A standby refuses LISTEN (and NOTIFY is not replicated), so the feed must notice it
is in recovery and poll the revision; the evaluator then follows writes made on the primary,
and after a promotion LISTENs again."""

from __future__ import annotations

import logging

import pytest

from flaggery.clock import utc_now
from flaggery.live.evaluator import Evaluator
from flaggery.store.repository import AsyncFlaggery
from tests.live.helpers import assert_matches_database, eventually, has_subject, seed
from tests.pgcluster import PrivateCluster, private_standby

pytestmark = pytest.mark.slow

FOLLOW_SECONDS = 10.0  # replication plus a poll, on a loaded machine


async def test_a_replica_on_a_hot_standby_follows_the_primary(
    cluster: PrivateCluster, cluster_db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = AsyncFlaggery.from_db_url(cluster_db_url)
    database = cluster_db_url.rsplit("/", 1)[1]
    try:
        await seed(store)
        with private_standby(cluster) as standby:
            caplog.set_level(logging.INFO, logger="flaggery")
            ev = Evaluator.from_db_url(standby.url_of(database))
            await ev.start()
            try:
                assert any("hot standby" in record.getMessage() for record in caplog.records)
                await assert_matches_database(ev, store, utc_now())

                await store.add_subject(1000, 3)
                await eventually(lambda: has_subject(ev, 1000), FOLLOW_SECONDS)
                await store.set_rollout_proportion("checkout", 0.5)
                revision = await store.revision()
                await ev.wait_for_revision(revision, timeout=FOLLOW_SECONDS)
                await assert_matches_database(ev, store, utc_now())

                # A failover: the standby becomes the primary, and writes go to it. The feed
                # notices at its next check, LISTENs and reloads; NOTIFY then brings changes.
                standby.promote()
                await eventually(lambda: "promoted" in caplog.text, FOLLOW_SECONDS)
                promoted = AsyncFlaggery.from_db_url(standby.url_of(database))
                try:
                    await promoted.add_subject(1001, 2)
                    await ev.wait_for_revision(await promoted.revision(), FOLLOW_SECONDS)
                    assert has_subject(ev, 1001)
                    await assert_matches_database(ev, promoted, utc_now())
                finally:
                    await promoted.close()
            finally:
                await ev.stop()
    finally:
        await store.close()
