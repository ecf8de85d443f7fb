"""One bad record never stops serving (issue 8, item 9): a state that does not build keeps the
last good snapshot, says so on /readyz and in a metric, and the log names the record.

The store accepts nothing that fails to build (tests/engine/test_edges.py), so the bad record
is written behind its back, as corruption or a faulty migration would: a subject in a bucket
that does not exist, with the foreign key check off, and a revision with no change-log row so
that replicas must reload fully.
"""

from __future__ import annotations

import logging
import sqlite3

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from flaggery.store.repository import AsyncFlaggery
from flaggery.store.urls import libpq_dsn
from tests.http.conftest import MakeClient
from tests.http.helpers import fails, ok, seed_basics

BAD_SUBJECT = 99


async def _sql(db_url: str, *statements: str) -> None:
    """Run statements outside flaggery, with foreign key checks off."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        with sqlite3.connect(str(url.database)) as connection:  # foreign keys off by default
            for statement in statements:
                connection.execute(statement)
        connection.close()
        return
    connection = await asyncpg.connect(libpq_dsn(url))
    try:
        await connection.execute("SET session_replication_role = replica")  # no FK triggers
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


async def _metric(client: httpx.AsyncClient, name: str) -> float:
    for line in (await client.get("/metrics")).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not exposed")


async def test_a_state_that_does_not_build_keeps_the_last_snapshot(
    make_client: MakeClient, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client(enable_prometheus=True)
    await seed_basics(client)
    served = ok(await client.get("/v1/subjects/1/flags"))
    await _sql(
        db_url,
        f"INSERT INTO subjects (id, weight, bucket_id) VALUES ({BAD_SUBJECT}, 1, 12345)",
        "UPDATE flaggery_state SET revision = revision + 1",
    )
    with caplog.at_level(logging.ERROR, logger="flaggery.store.replica"):
        ok(await client.post("/v1/features/later"), 201)  # committed; the reload fails
    assert f"subject {BAD_SUBJECT}" in caplog.text

    ready = ok(await client.get("/readyz"))
    assert ready["stale"] is True
    assert f"subject {BAD_SUBJECT} (its bucket does not exist)" in ready["build_error"]
    assert ok(await client.get("/v1/subjects/1/flags")) == served
    assert await _metric(client, "flaggery_snapshot_build_failing") == 1.0

    await _sql(db_url, f"DELETE FROM subjects WHERE id = {BAD_SUBJECT}")
    ok(await client.post("/v1/features/fixed"), 201)
    ready = ok(await client.get("/readyz"))
    assert (ready["stale"], ready["build_error"]) == (False, None)
    assert ready["revision"] == ok(await client.get("/v1/revision"))["revision"]
    assert ok(await client.get("/v1/features"))["features"] == ["f", "fixed", "later"]
    assert await _metric(client, "flaggery_snapshot_build_failing") == 0.0


async def test_a_server_started_on_a_bad_record_says_which(
    make_client: MakeClient, db_url: str, store: AsyncFlaggery
) -> None:
    await store.increase_buckets(1)
    await _sql(db_url, f"INSERT INTO subjects (id, weight, bucket_id) VALUES ({BAD_SUBJECT}, 1, 7)")
    client = await make_client(admin_mode=False)
    message = fails(await client.get("/readyz"), 503, "DatabaseUnavailable")
    assert f"subject {BAD_SUBJECT} (its bucket does not exist)" in message
