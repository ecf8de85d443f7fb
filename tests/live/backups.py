"""Backups and restores as operators take them: SQLite's backup API, pg_dump -Fc / pg_restore."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url

from flaggery.store.urls import libpq_dsn


async def take_backup(db_url: str, path: Path) -> None:
    """Copy the whole database at `db_url` into the file `path`."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        await asyncio.to_thread(_sqlite_copy, str(url.database), str(path))
    else:
        await _run("pg_dump", "-Fc", "-f", str(path), "--dbname", libpq_dsn(url))


async def restore_backup(path: Path, db_url: str) -> None:
    """Replace the database at `db_url` by the backup in `path`, while clients are connected."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        await asyncio.to_thread(_sqlite_copy, str(path), str(url.database))
    else:
        await _run(
            "pg_restore", "--clean", "--if-exists", "--single-transaction",
            "--dbname", libpq_dsn(url), str(path),
        )  # fmt: skip


def _sqlite_copy(source: str, target: str) -> None:
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


async def _run(*command: str) -> None:
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{command[0]} failed: {err.decode()}{out.decode()}")
