"""The snapshot file: atomic writes, kept current by the Evaluator, read back at a cold start."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flaggery import errors
from flaggery.engine import build_snapshot
from flaggery.live.evaluator import Evaluator
from flaggery.live.snapshot_file import read_snapshot_file, write_snapshot_file
from flaggery.store.repository import AsyncFlaggery
from tests.fakes import FakeClock
from tests.live.helpers import assert_matches_database, eventually, has_subject, seed


def saved_revision(path: Path) -> int | None:
    saved = read_snapshot_file(path)
    return None if saved is None else saved.state.revision


async def test_the_file_is_replaced_whole_and_read_back(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "saved" / "snapshot.flaggery"
    path.parent.mkdir()
    assert read_snapshot_file(path) is None
    async with AsyncFlaggery.from_db_url(db_url) as store:
        await seed(store)
        async with Evaluator(store.database) as ev:
            state = ev.snapshot.to_state()
    confirmed_at = datetime.now(UTC) - timedelta(seconds=30)
    write_snapshot_file(path, state, confirmed_at)
    write_snapshot_file(path, state, confirmed_at)
    assert [p.name for p in path.parent.iterdir()] == [path.name], "no temporary file left over"
    saved = read_snapshot_file(path)
    assert saved is not None and saved.confirmed_at == confirmed_at
    assert 30 <= saved.age_seconds < 40
    restored = build_snapshot(saved.state, datetime.now(UTC))
    assert [restored.flags_json(i) for i in range(50)] == [ev.flags_json(i) for i in range(50)]
    path.write_bytes(b"garbage")
    with pytest.raises(ValueError):
        read_snapshot_file(path)


async def test_the_evaluator_keeps_the_file_current_at_most_once_per_interval(
    db_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    path = tmp_path / "snapshot.flaggery"
    async with AsyncFlaggery.from_db_url(db_url, clock=clock) as store:
        await seed(store)
        first = await store.revision()
        ev = Evaluator.from_db_url(db_url, clock=clock, snapshot_path=path, snapshot_interval=3600)
        async with ev:
            await eventually(lambda: saved_revision(path) == first)
            await store.add_subject(1000, 3)
            await store.set_rollout_proportion("checkout", 0.5)
            await ev.wait_for_revision(await store.revision(), timeout=5)
            assert saved_revision(path) == first, "the next write waits for the interval"
        assert saved_revision(path) == await store.revision(), "stopping writes the latest"
        saved = read_snapshot_file(path)
        assert saved is not None
        async with Evaluator.from_db_url(db_url, clock=clock) as fresh:
            restored = build_snapshot(saved.state, clock.now)
            assert [restored.flags_json(i) for i in range(50)] == [
                fresh.flags_json(i) for i in range(50)
            ]
            assert restored.subject(1000) == fresh.subject(1000)


async def test_a_cold_start_serves_the_file_until_sqlite_appears(
    sqlite_template: Path, tmp_path: Path, clock: FakeClock
) -> None:
    """SQLite is unreachable while its directory is missing: the same path as an outage.

    (PostgreSQL's cold start is in test_outage.py, on a cluster that test can stop.)
    """
    path = tmp_path / "snapshot.flaggery"
    database = tmp_path / "flaggery.db"
    shutil.copy(sqlite_template, database)
    db_url = f"sqlite:///{database}"
    async with AsyncFlaggery.from_db_url(db_url, clock=clock) as store:
        await seed(store)
        async with Evaluator(store.database, snapshot_path=path, snapshot_interval=0.05) as ev:
            await eventually(lambda: saved_revision(path) == ev.revision)
            expected = [ev.flags_json(i) for i in range(50)]

    missing = tmp_path / "not-yet" / "flaggery.db"
    unreachable = f"sqlite:///{missing}"
    with pytest.raises(errors.DatabaseUnavailable):
        async with Evaluator.from_db_url(unreachable, clock=clock):
            pass

    cold = Evaluator.from_db_url(unreachable, clock=clock, snapshot_path=path, poll_interval=0.05)
    async with cold:
        assert cold.stale and not cold.connected
        assert [cold.flags_json(i) for i in range(50)] == expected
        missing.parent.mkdir()
        shutil.copy(database, missing)
        async with AsyncFlaggery.from_db_url(unreachable, clock=clock) as moved:
            await moved.add_subject(2000, 1)
            await eventually(lambda: has_subject(cold, 2000), timeout=10)
            assert cold.connected and not cold.stale
            await assert_matches_database(cold, moved, clock.now)
