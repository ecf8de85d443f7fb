"""Logging a failure that repeats: once when it starts or its reason changes, at debug while it
repeats, and one INFO line when it ends.

A loop that retries every few seconds through an outage would otherwise write a line per
attempt per worker (30 lines in 20 s for a two-worker edge whose upstream is down) and say
nothing when the outage ends. Used by every retry loop: the app's first snapshot
(flaggery.http.app), the evaluator's first connection, the upstream feed and the polling feed.
"""

from __future__ import annotations

import logging

from flaggery.errors import UpstreamRefused

__all__ = ["FailureLog", "level_of"]


def level_of(error: BaseException) -> int:
    """ERROR for a refused upstream token (it lasts until an operator acts), else WARNING (an
    outage passes by itself)."""
    return logging.ERROR if isinstance(error, UpstreamRefused) else logging.WARNING


class FailureLog:
    """The state of one retry loop's log: the reason of the failure in progress, if any."""

    def __init__(self, logger: logging.Logger) -> None:
        self._log = logger
        self.reason: str | None = None
        """The reason last reported by `failed`; None when not failing."""

    def failed(
        self, reason: str, message: str, *args: object, level: int = logging.WARNING,
        exc_info: bool = False,
    ) -> None:  # fmt: skip
        """Log ``message % args`` at ``level`` if ``reason`` differs from the last one, else at
        debug. ``reason`` is what tells repeats apart (the error's text, without counters)."""
        if reason == self.reason:
            self._log.debug(message, *args)
            return
        self.reason = reason
        self._log.log(level, message, *args, exc_info=exc_info)

    def recovered(self, message: str, *args: object) -> None:
        """Log ``message % args`` at INFO if a failure was in progress, and forget it."""
        if self.reason is not None:
            self.reason = None
            self._log.info(message, *args)
