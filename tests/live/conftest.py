"""A private PostgreSQL cluster for the outage tests, which stop and start it.

The shared server of ``tests/conftest.py`` is never stopped: other test runs depend on it.
Without PostgreSQL's server binaries these tests skip with the reason, unless
FLAGGERY_REQUIRE_POSTGRES=1.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import asyncpg
import pytest

from flaggery.store.database import Database
from flaggery.store.migrations import upgrade
from tests.pgcluster import PG_BIN_GLOB, PrivateCluster, find_pg_bin, private_cluster

REQUIRE_POSTGRES = os.environ.get("FLAGGERY_REQUIRE_POSTGRES") == "1"


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    """A running private cluster, for this module only."""
    pg_bin = find_pg_bin()
    if pg_bin is None:
        message = (
            f"PostgreSQL's initdb is not in {PG_BIN_GLOB} (set FLAGGERY_PG_BIN to its "
            "directory): the outage tests need a private cluster they can stop"
        )
        if REQUIRE_POSTGRES:
            pytest.fail(message + " (FLAGGERY_REQUIRE_POSTGRES=1)")
        pytest.skip(message)
    with private_cluster(pg_bin) as running:
        yield running


@pytest.fixture
async def cluster_db_url(cluster: PrivateCluster) -> str:
    """An empty, migrated database on the private cluster, which is running."""
    cluster.thaw()  # a failed test may have left it frozen, or stopped
    if not cluster.is_running():
        cluster.start()
    name = f"flaggery_outage_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(cluster.url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    db = Database(cluster.url_of(name))
    try:
        await upgrade(db.engine)
    finally:
        await db.dispose()
    return cluster.url_of(name)
