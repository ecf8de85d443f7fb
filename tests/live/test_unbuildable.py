"""A database replica does not retry a state that does not build (issue 18, item 8): while the
database stays at that head, starting again (the server's first-snapshot loop, a reconnect, a
replica restored from its snapshot file) reads the head, not every subject again; a later
revision is loaded, and builds once the record is fixed."""

from __future__ import annotations

from typing import Any

import pytest

from flaggery.live.evaluator import Evaluator
from flaggery.store import loader
from flaggery.store.replica import SnapshotBuildFailed
from flaggery.store.repository import AsyncFlaggery
from tests.http.test_bad_record import BAD_SUBJECT, _sql
from tests.live.helpers import seed


async def test_the_same_unbuildable_head_is_loaded_once(
    store: AsyncFlaggery, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(store)
    loads = 0
    load = loader.load_state_and_head

    async def counted(*args: Any) -> Any:
        nonlocal loads
        loads += 1
        return await load(*args)

    # Replica imports the loader lazily (at each reload), so the loader module is patched.
    monkeypatch.setattr(loader, "load_state_and_head", counted)
    await _sql(
        db_url,
        f"INSERT INTO subjects (id, weight, bucket_id) VALUES ({BAD_SUBJECT}, 1, 12345)",
        "UPDATE flaggery_state SET revision = revision + 1",
    )
    evaluator = Evaluator(store.database)
    try:
        for _ in range(3):
            with pytest.raises(SnapshotBuildFailed, match=f"subject {BAD_SUBJECT}"):
                await evaluator.start()
        assert loads == 1
        assert evaluator.connected and evaluator.stale

        await _sql(db_url, f"DELETE FROM subjects WHERE id = {BAD_SUBJECT}")
        await store.add_feature("fixed")  # the database moves on: loaded again, and it builds
        await evaluator.start()
        assert loads == 2
        assert evaluator.build_error is None and not evaluator.stale
        assert "fixed" in evaluator.snapshot.to_state().features
    finally:
        await evaluator.stop()
