"""The change-log retention settings, and the admin server pruning in the background."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from flaggery.cli import main
from flaggery.settings import Settings, SettingsError
from flaggery.store import tables as t
from flaggery.store.repository import AsyncFlaggery
from tests.http.conftest import MakeClient


def test_retention_settings_from_variables_and_flags() -> None:
    assert Settings.from_env({}).change_log_retention_revisions == 100_000
    settings = Settings.from_env(
        {
            "FLAGGERY_CHANGE_LOG_RETENTION_REVISIONS": "500",
            "FLAGGERY_CHANGE_LOG_RETENTION_DAYS": "7",
        }
    )
    assert (settings.change_log_retention_revisions, settings.change_log_retention_days) == (500, 7)
    with pytest.raises(SettingsError, match="FLAGGERY_CHANGE_LOG_RETENTION_DAYS"):
        Settings.from_env({"FLAGGERY_CHANGE_LOG_RETENTION_DAYS": "-1"})


def test_the_cli_refuses_a_negative_retention(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--change-log-retention-revisions", "-5"]) == 2
    assert "FLAGGERY_CHANGE_LOG_RETENTION_REVISIONS" in capsys.readouterr().err


async def _logged(store: AsyncFlaggery) -> list[int]:
    async with store.database.read() as conn:
        query = select(t.change_log.c.revision).order_by(t.change_log.c.revision)
        return list((await conn.execute(query)).scalars())


async def test_only_the_admin_server_prunes(make_client: MakeClient, store: AsyncFlaggery) -> None:
    for number in range(6):
        await store.add_feature(f"f{number}")
    await make_client(admin_mode=False, change_log_retention_revisions=2)
    await asyncio.sleep(0.2)
    assert await _logged(store) == [1, 2, 3, 4, 5, 6]
    await make_client(admin_mode=True, change_log_retention_revisions=2)
    for _ in range(100):
        if await _logged(store) == [5, 6]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not pruned: {await _logged(store)}")
