"""FailureLog: a retried failure is logged when it starts and when its reason changes, at
debug while it repeats, and its end once at INFO."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from flaggery.clock import utc_now
from flaggery.errors import UpstreamRefused, UpstreamUnavailable
from flaggery.live.failure_log import FailureLog, level_of
from flaggery.live.polling_feed import PollingFeed
from flaggery.store.database import Database
from flaggery.store.head import Head
from flaggery.store.migrations import upgrade
from flaggery.store.replica import Replica

log = logging.getLogger("flaggery.test.failures")


def test_repeats_go_to_debug_and_the_end_is_said_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=log.name)
    failures = FailureLog(log)
    failures.recovered("never failed")  # nothing to recover from: silent
    for _ in range(3):
        failures.failed("refused", "down: %s", "refused")
    failures.failed("timeout", "down: %s", "timeout", level=logging.ERROR)
    failures.failed("timeout", "down: %s", "timeout", level=logging.ERROR)
    failures.recovered("back at %s", 7)
    failures.recovered("back at %s", 8)
    failures.failed("refused", "down: %s", "refused")
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "down: refused"),
        ("DEBUG", "down: refused"),
        ("DEBUG", "down: refused"),
        ("ERROR", "down: timeout"),
        ("DEBUG", "down: timeout"),
        ("INFO", "back at 7"),
        ("WARNING", "down: refused"),  # a new failure after the recovery is said again
    ]
    assert failures.reason == "refused"


def test_a_refused_token_is_an_error_and_an_outage_a_warning() -> None:
    assert level_of(UpstreamRefused("401")) == logging.ERROR
    assert level_of(UpstreamUnavailable("down")) == logging.WARNING
    assert level_of(OSError("refused")) == logging.WARNING


async def test_the_polling_feed_logs_an_outage_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The SQLite feed checks the head every 0.25 s: a failing check is one warning for the
    whole outage, and one line when it ends (it was a warning with a traceback per check)."""
    db = Database(f"sqlite:///{tmp_path / 'flaggery.db'}")
    try:
        await upgrade(db.engine)
        replica = Replica(db, utc_now)
        feed = PollingFeed(db, replica, interval=0.01)
        await feed.start()
        caplog.set_level(logging.INFO, logger="flaggery.live.polling_feed")
        working = db.head
        db.head = _failing_head  # type: ignore[method-assign]
        await asyncio.sleep(0.2)
        db.head = working  # type: ignore[method-assign]
        await asyncio.sleep(0.1)
        await feed.stop()
    finally:
        await db.dispose()
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "Revision check failed: OSError: disk gone"),
        ("INFO", "Revision check works again"),
    ]
    assert replica.counts.failed >= 5


async def _failing_head() -> Head:
    raise OSError("disk gone")
