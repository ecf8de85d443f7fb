"""The targeting-key salt (issue 19): given to each database at migration, loaded into every
snapshot, carried by the snapshot file, kept by backup and restore, so every process hashes a key
into the same bucket, and another database hashes it elsewhere."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from flaggery.engine import build_snapshot
from flaggery.engine.model import State
from flaggery.live.evaluator import Evaluator
from flaggery.live.snapshot_file import read_snapshot_file
from flaggery.store import tables as t
from flaggery.store.database import Database
from flaggery.store.migrations import upgrade
from flaggery.store.repository import AsyncFlaggery
from tests.engine.naive import naive_bucket_of_key
from tests.fakes import FakeClock
from tests.live.backups import restore_backup, take_backup
from tests.live.helpers import eventually, seed

KEYS = [f"visitor-{n}@example.com" for n in range(200)]


async def _stored_salt(db: Database) -> str:
    async with db.read() as conn:
        return str((await conn.execute(select(t.state.c.key_salt))).scalar_one())


def _buckets(state: State) -> list[int]:
    snapshot = build_snapshot(state, datetime.now(UTC))
    return [snapshot.evaluate(key).view.bucket or 0 for key in KEYS]


async def test_the_salt_given_at_migration_is_what_every_process_hashes_with(
    store: AsyncFlaggery, clock: FakeClock, tmp_path: Path
) -> None:
    await seed(store)
    salt = await _stored_salt(store.database)
    assert len(bytes.fromhex(salt)) == 16
    evaluation = await store.evaluate(KEYS[0])
    async with Evaluator(store.database, snapshot_path=tmp_path / "snap") as ev:
        state = ev.snapshot.to_state()
        assert state.key_salt == bytes.fromhex(salt)
        expected = [naive_bucket_of_key(state, key) for key in KEYS]
        assert [ev.evaluate(key).view.bucket for key in KEYS] == expected
        assert len(set(expected)) == 4, "200 keys reach every one of 4 buckets"
        assert evaluation == ev.evaluate(KEYS[0])
        await eventually(lambda: read_snapshot_file(tmp_path / "snap") is not None)
    saved = read_snapshot_file(tmp_path / "snap")
    assert saved is not None and saved.state.key_salt == state.key_salt
    assert _buckets(saved.state) == expected


async def test_another_database_hashes_keys_elsewhere(store: AsyncFlaggery, tmp_path: Path) -> None:
    other = Database(f"sqlite:///{tmp_path / 'other.db'}")
    try:
        await upgrade(other.engine)
        assert await _stored_salt(other) != await _stored_salt(store.database)
    finally:
        await other.dispose()


async def test_a_restored_backup_hashes_keys_as_before(
    store: AsyncFlaggery, db_url: str, clock: FakeClock, tmp_path: Path
) -> None:
    await seed(store)
    before = [(await store.evaluate(key)).view.bucket for key in KEYS]
    salt = await _stored_salt(store.database)
    await take_backup(db_url, tmp_path / "backup")
    await store.increase_buckets(2)
    assert [(await store.evaluate(key)).view.bucket for key in KEYS] != before
    await restore_backup(tmp_path / "backup", db_url)
    assert await _stored_salt(store.database) == salt
    assert [(await store.evaluate(key)).view.bucket for key in KEYS] == before
