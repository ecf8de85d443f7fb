"""upgrade_db on a database that cannot be reached: DatabaseUnavailable, from every API."""

from __future__ import annotations

from pathlib import Path

import pytest

from flaggery.core import Flaggery
from flaggery.errors import DatabaseUnavailable
from flaggery.store.repository import AsyncFlaggery
from tests.unreachable import unreachable_postgres_url


def unreachable_urls(tmp_path: Path) -> list[str]:
    return [unreachable_postgres_url(), f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}"]


async def test_async_upgrade_raises_database_unavailable(tmp_path: Path) -> None:
    for url in unreachable_urls(tmp_path):
        async with AsyncFlaggery.from_db_url(url) as store:
            with pytest.raises(DatabaseUnavailable, match="unreachable"):
                await store.upgrade_db()


def test_sync_upgrade_raises_database_unavailable(tmp_path: Path) -> None:
    for url in unreachable_urls(tmp_path):
        with Flaggery.from_db_url(url) as flaggery, pytest.raises(DatabaseUnavailable):
            flaggery.upgrade_db()
