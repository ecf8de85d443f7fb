"""Background tasks: how every long-running loop of flaggery is stopped.

Stopping never hangs: `cancel_and_wait` waits a bounded time for the cancelled tasks, then
logs (at ERROR, by task name) each one that did not stop and returns anyway. Code that waits
with a timeout on a cancel path uses ``asyncio.timeout``, never ``asyncio.wait_for``: on
Python 3.11 ``wait_for`` swallows a cancellation that arrives in the same loop tick as the
inner wait completes (CPython issue 86296), so a NOTIFY landing during shutdown kept a feed
running, and its ``stop`` waiting, for good.
"""

from __future__ import annotations

import asyncio
import logging

__all__ = ["STOP_TIMEOUT_SECONDS", "cancel_and_wait"]

log = logging.getLogger(__name__)

STOP_TIMEOUT_SECONDS = 5.0
"""How long `cancel_and_wait` waits for cancelled tasks to finish their cleanup."""


async def cancel_and_wait(
    *tasks: asyncio.Task[None] | None, timeout: float = STOP_TIMEOUT_SECONDS
) -> None:
    """Cancel the tasks and wait up to ``timeout`` seconds until each has finished its
    cleanup (None entries: ignored). A task still running then is logged and left; a task
    that had ended with an exception is logged with it. Never raises but CancelledError
    (when the caller itself is cancelled)."""
    running = [task for task in tasks if task is not None]
    for task in running:
        task.cancel()
    if not running:
        return
    done, pending = await asyncio.wait(running, timeout=timeout)
    for task in pending:
        log.error(
            "Task %r did not stop within %.1f s of being cancelled; leaving it running",
            task.get_name(), timeout,
        )  # fmt: skip
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            log.error("Task %r had failed", task.get_name(), exc_info=task.exception())
