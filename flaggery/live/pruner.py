"""The admin process prunes the change log in the background (flaggery.store.retention)."""

from __future__ import annotations

import asyncio
import logging

from flaggery.store.database import Database
from flaggery.store.retention import Retention, prune_change_log

__all__ = ["PRUNE_INTERVAL_SECONDS", "prune_forever"]

log = logging.getLogger(__name__)

# Pruning is one indexed DELETE; once a minute keeps the log within a minute's writes of its
# bound without adding noticeable load.
PRUNE_INTERVAL_SECONDS = 60.0


async def prune_forever(
    db: Database, retention: Retention, interval: float = PRUNE_INTERVAL_SECONDS
) -> None:
    """Prune now, then every `interval` seconds; a failure is logged and retried next time."""
    while True:
        try:
            deleted = await prune_change_log(db, retention)
        except Exception as error:
            log.warning("Pruning the change log failed (retrying in %.0f s): %s", interval, error)
        else:
            if deleted:
                log.info("Pruned %s change-log rows outside %s", deleted, retention)
        await asyncio.sleep(interval)
