"""The read-only PostgreSQL role, verified: a replica whose role has only USAGE on the
schema and SELECT on its tables loads, follows (LISTEN) and serves, history and snapshot
included. PostgreSQL only: SQLite has no roles."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from flaggery.store.urls import libpq_dsn
from tests.http.processes import flaggery_process

MIN = "X-Flaggery-Min-Revision"


async def test_a_replica_needs_only_usage_and_select(clean_postgres: str, tmp_path: Path) -> None:
    role = f"flaggery_ro_{uuid.uuid4().hex[:10]}"
    owner = await asyncpg.connect(libpq_dsn(make_url(clean_postgres)))
    try:
        await owner.execute(f'CREATE ROLE "{role}" LOGIN')
        # Exactly the grants in docs/deployment.md.
        await owner.execute(f'GRANT USAGE ON SCHEMA public TO "{role}"')
        await owner.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{role}"')
        read_only_url = make_url(clean_postgres).set(username=role)
        replica_url = read_only_url.render_as_string(hide_password=False)
        with contextlib.ExitStack() as stack:
            admin = stack.enter_context(
                flaggery_process(["--admin", "--db-url", clean_postgres], tmp_path)
            )
            replica = stack.enter_context(flaggery_process(["--db-url", replica_url], tmp_path))
            admin.client.put("/v1/buckets", params={"amount": 2}).raise_for_status()
            admin.client.post("/v1/subjects/1", params={"weight": 1}).raise_for_status()
            admin.client.post("/v1/features/f").raise_for_status()
            write = admin.client.post("/v1/features/f/variants/A", params={"make_default": "1"})
            at = {MIN: write.headers["x-flaggery-revision"]}
            flags = replica.client.get("/v1/subjects/1/flags", headers=at)
            assert flags.json() == {"flags": {"f": "A"}}
            history = replica.client.get("/v1/changes", headers=at).json()
            assert [c["operation"] for c in history["changes"]][-1] == "add_variant"
            assert replica.client.get("/v1/snapshot", headers=at).status_code == 200
            # Admin routes, reads included, are the admin server's: 423 here.
            assert replica.client.get("/v1/features").status_code == 423
    finally:
        await owner.execute(f'DROP OWNED BY "{role}"')
        await owner.execute(f'DROP ROLE IF EXISTS "{role}"')
        await owner.close()
