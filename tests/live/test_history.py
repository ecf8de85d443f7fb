"""A rewritten history is noticed and reloaded (issue 8, item 10): a backup restored into the
live database, another database behind the same URL. On SQLite and PostgreSQL, with the
backup tools operators use (SQLite's backup API, pg_dump -Fc / pg_restore)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TypedDict

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from flaggery.live.evaluator import Evaluator
from flaggery.store.database import Database
from flaggery.store.migrations import upgrade
from flaggery.store.repository import AsyncFlaggery
from flaggery.store.urls import libpq_dsn
from tests.fakes import FakeClock
from tests.live.backups import restore_backup, take_backup
from tests.live.helpers import assert_matches_database, eventually


class Intervals(TypedDict):
    poll_interval: float
    check_interval: float


FAST: Intervals = {"poll_interval": 0.05, "check_interval": 0.2}
# The feed never looks on its own (on PostgreSQL only NOTIFY wakes it): the test decides when.
MANUAL: Intervals = {"poll_interval": 3600.0, "check_interval": 3600.0}


async def _to_revision_4(store: AsyncFlaggery) -> None:
    await store.increase_buckets(2)
    await store.add_subjects([(1, 1), (2, 1)])
    await store.add_feature("f")
    await store.add_variant("old", "f", make_default=True)
    assert await store.revision() == 4


async def _old_to_new(store: AsyncFlaggery) -> None:
    await store.add_variant("new", "f")
    await store.set_default_feature_variant("f", "new")


async def _four_more_writes(store: AsyncFlaggery) -> None:
    await store.add_feature("g")  # added in between: must appear
    await store.add_variant("x", "g", make_default=True)
    await store.add_variant("new", "f")
    await store.set_default_feature_variant("f", "new")


async def test_a_restored_backup_is_picked_up_while_connected(
    store: AsyncFlaggery, db_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    await _to_revision_4(store)
    backup = tmp_path / "backup"
    await take_backup(db_url, backup)
    async with Evaluator.from_db_url(db_url, clock=clock, **FAST) as ev:
        await _old_to_new(store)
        await ev.wait_for_revision(6, timeout=5)
        assert ev.variants(1) == {"f": "new"}
        await restore_backup(backup, db_url)
        await eventually(lambda: ev.revision == 4 and ev.variants(1) == {"f": "old"})
        assert not ev.stale
        assert await store.get_subject_variants(1) == {"f": "old"}
        await _four_more_writes(store)
        await eventually(lambda: ev.revision == 8)
        assert ev.variants(1) == {"f": "new", "g": "x"}
        await assert_matches_database(ev, store, clock.now)


async def test_writes_after_a_restore_do_not_patch_the_old_base(
    store: AsyncFlaggery, db_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    """The replica looks only after the restore and four writes: revision 8 is ahead of its 6,
    but revisions 5 and 6 are another history's, so only a full reload is right."""
    await _to_revision_4(store)
    backup = tmp_path / "backup"
    await take_backup(db_url, backup)
    async with Evaluator.from_db_url(db_url, clock=clock, **MANUAL) as ev:
        await _old_to_new(store)
        assert await ev.refresh()
        full = ev.counts.full
        await restore_backup(backup, db_url)
        await _four_more_writes(store)
        assert await ev.refresh()
        assert ev.revision == 8
        assert ev.variants(1) == {"f": "new", "g": "x"}
        assert ev.counts.full > full
        await assert_matches_database(ev, store, clock.now)


async def test_same_revision_other_history_is_reloaded(
    store: AsyncFlaggery, db_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    """Restore at 4, then two other writes: the revision is 6 again, the history is not."""
    await _to_revision_4(store)
    backup = tmp_path / "backup"
    await take_backup(db_url, backup)
    async with Evaluator.from_db_url(db_url, clock=clock, **MANUAL) as ev:
        await _old_to_new(store)
        assert await ev.refresh()
        await restore_backup(backup, db_url)
        await store.add_variant("other", "f")
        await store.set_default_feature_variant("f", "other")
        assert await ev.refresh()
        assert (ev.revision, ev.variants(1)) == (6, {"f": "other"})


async def test_another_database_behind_the_same_url_is_reloaded(
    store: AsyncFlaggery, db_url: str, other_db_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    """Two databases with the same revisions: only their identities tell them apart."""
    other_url = other_db_url
    async with AsyncFlaggery.from_db_url(other_url, clock=clock) as other:
        await _to_revision_4(other)
        await other.add_variant("elsewhere", "f")
        await other.set_default_feature_variant("f", "elsewhere")
        await take_backup(other_url, tmp_path / "other")
    await _to_revision_4(store)
    async with Evaluator.from_db_url(db_url, clock=clock, **MANUAL) as ev:
        await _old_to_new(store)
        assert await ev.refresh()
        assert ev.variants(1) == {"f": "new"}
        await restore_backup(tmp_path / "other", db_url)
        assert await ev.refresh()
        assert (ev.revision, ev.variants(1)) == (6, {"f": "elsewhere"})


@pytest.fixture
async def other_db_url(db_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """Another migrated database (its own identity) on the same server or directory."""
    if db_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'other.db'}"
        await _migrate(url)
        yield url
        return
    base = make_url(db_url)
    name = f"{base.database}_other"
    admin = await asyncpg.connect(libpq_dsn(base.set(database="postgres")))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = base.set(database=name).render_as_string(hide_password=False)
        await _migrate(url)
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _migrate(url: str) -> None:
    db = Database(url)
    try:
        await upgrade(db.engine)
    finally:
        await db.dispose()
