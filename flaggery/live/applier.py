"""The admin process applies due scheduled steps and release-plan steps in the background.

Every admin server runs one applier; several on one database coordinate through it (each
step is applied in a write that re-reads it under the database's write lock, see
flaggery.store.schedules), so running more admin servers never applies a step twice.
"""

from __future__ import annotations

import asyncio
import logging
import time

from flaggery.live.failure_log import FailureLog
from flaggery.store.repository import AsyncFlaggery

__all__ = ["APPLY_INTERVAL_SECONDS", "apply_forever"]

log = logging.getLogger(__name__)

APPLY_INTERVAL_SECONDS = 1.0
"""How often the applier looks for due steps (one indexed read per look when nothing is
due). It looks at whole multiples of it (every second on the second), so a step due at
09:00:00 is applied just after 09:00:00, not up to a second later; every admin server then
looks at the same moments and they contend for each due step, which the store settles."""


async def apply_forever(store: AsyncFlaggery, interval: float = APPLY_INTERVAL_SECONDS) -> None:
    """Apply what is due now, then every `interval` seconds; a failure (the database is
    down, say) is logged and retried next time, when the latest due state is applied."""
    failures = FailureLog(log)  # an outage is one line when it starts, one when it ends
    while True:
        try:
            applied = await store.apply_due()
        except Exception as error:
            reason = str(error) or type(error).__name__
            failures.failed(reason, "Applying due steps failed (retrying every second): %s", reason)
        else:
            failures.recovered("Applying due steps works again: what fell due meanwhile is applied")
            for name in applied:
                log.info("Applied due steps of %s", name, extra={"actor": name})
        await asyncio.sleep(interval - time.time() % interval)
