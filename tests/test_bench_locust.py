"""bench/locustfile.py as documented: headless for a few seconds against the real servers it
starts, on a PostgreSQL database it creates and drops; a database it did not create is never
dropped unless it is told to."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from flaggery.store.urls import libpq_dsn
from tests.conftest import POSTGRES_URL

LOCUSTFILE = Path(__file__).resolve().parent.parent / "bench" / "locustfile.py"


@pytest.fixture
def server_url(postgres_database: str) -> str:
    """The PostgreSQL server the benchmark creates its database on (reachable: the fixture it
    depends on skips, or fails with FLAGGERY_REQUIRE_POSTGRES=1, when it is not)."""
    return POSTGRES_URL


def on_server(statement: str, *args: str) -> object:
    async def run() -> object:
        connection = await asyncpg.connect(libpq_dsn(make_url(POSTGRES_URL)), timeout=5)
        try:
            return await connection.fetchval(statement, *args)
        finally:
            await connection.close()

    return asyncio.run(run())


def database_exists(name: str) -> bool:
    return bool(on_server("SELECT count(*) FROM pg_database WHERE datname = $1", name))


def locust(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(LOCUSTFILE), *args], capture_output=True, text=True, timeout=150
    )


@pytest.mark.slow(seconds=20)
def test_the_locustfile_runs_headless_against_real_servers(server_url: str) -> None:
    name = f"flaggery_locust_{uuid.uuid4().hex[:8]}"
    # All users at once, and seconds enough for the readers on a loaded machine.
    options = ("--users=4", "--spawn-rate=100", "--duration=5")
    result = locust("--postgres-url", server_url, "--database", name, *options)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["failures"] == 0, output
    requests = summary["by_request"]
    assert requests.get("GET /v1/subjects/{subject_id}/flags", {}).get("requests", 0) > 20, output
    writes = sum(count["requests"] for name, count in requests.items() if "GET" not in name)
    assert writes > 0, output  # the admin user wrote to the admin server
    assert not database_exists(name)  # the run created it, so the run dropped it


def test_a_database_the_benchmark_did_not_create_is_left_alone(server_url: str) -> None:
    name = f"flaggery_locust_{uuid.uuid4().hex[:8]}"
    on_server(f'CREATE DATABASE "{name}"')
    try:
        result = locust("--postgres-url", server_url, "--database", name, "--duration", "1")
        assert result.returncode == 1
        assert f"A database named '{name}' exists already" in result.stderr
        assert "--replace-database" in result.stderr
        assert "Traceback" not in result.stderr
        assert database_exists(name)
    finally:
        on_server(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
