"""A server process freezes what startup made, so the cyclic collector's full collections no
longer walk the modules, the app and the first snapshot; an app made for a test does not."""

from __future__ import annotations

import gc

from flaggery.http import create_app
from flaggery.settings import Settings


async def test_a_server_app_freezes_after_startup_and_unfreezes_at_shutdown(db_url: str) -> None:
    app = create_app(Settings(db_url=db_url, db_auto_upgrade=False), freeze_gc=True)
    assert gc.get_freeze_count() == 0
    async with app.router.lifespan_context(app):
        assert gc.get_freeze_count() > 1_000  # flaggery's modules alone hold more objects
    assert gc.get_freeze_count() == 0


async def test_an_app_freezes_nothing_by_default(db_url: str) -> None:
    app = create_app(Settings(db_url=db_url, db_auto_upgrade=False))
    async with app.router.lifespan_context(app):
        assert gc.get_freeze_count() == 0
