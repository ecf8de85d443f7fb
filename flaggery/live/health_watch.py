"""The health of every live A/B test, recomputed from the database at an interval.

A server with a database keeps `HealthWatch.latest`: test name -> its `AbTestHealth`
(registered subjects counted one each), for the tests live at the last check. The HTTP layer
copies it into Prometheus gauges (sequential p and state per live test). A check reads each
live test's counters (one query per test) and, once per snapshot, the bucket tallies of the
registered subjects (a pass over them: the same cost as GET /v1/abtests/{name}/health).

When a check finds a test red:
- on an admin server (``stopper`` given), a test with ``auto_stop`` is stopped: one write,
  whose actor says why (``auto_stop: ...``, in the history);
- on an admin server, every active release plan ramping a variant the red test sets is paused
  (`AsyncFlaggery.pause_plans_in_test`; nothing is written while it stays paused).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable

from flaggery.clock import Clock
from flaggery.engine.expected_shares import bucket_tallies
from flaggery.engine.health_report import AbTestHealth, health_of
from flaggery.engine.snapshot import Snapshot
from flaggery.errors import AbTestNotLive, DatabaseUnavailable, FlaggeryError
from flaggery.store.actor import acting_as
from flaggery.store.database import Database
from flaggery.store.exposures import read_exposure_counts
from flaggery.store.repository import AsyncFlaggery

__all__ = ["HEALTH_CHECK_SECONDS", "HealthWatch"]

log = logging.getLogger(__name__)

HEALTH_CHECK_SECONDS = 15.0
"""Seconds between two checks of every live test's health."""


class HealthWatch:
    """See the module docstring; `run` is its loop."""

    def __init__(
        self,
        db: Database,
        snapshot_of: Callable[[], Snapshot | None],
        clock: Clock,
        stopper: AsyncFlaggery | None = None,
    ) -> None:
        self._db = db
        self._stopper = stopper
        self._snapshot_of = snapshot_of
        self._clock = clock
        self._tallies: tuple[Snapshot, Counter[int]] | None = None
        self.latest: dict[str, AbTestHealth] = {}
        """Live test name -> its health at the last check."""

    def _subject_tallies(self, snapshot: Snapshot) -> Counter[int]:
        if self._tallies is None or self._tallies[0] is not snapshot:
            self._tallies = (snapshot, bucket_tallies(snapshot.to_state().subjects, "subjects"))
        return self._tallies[1]

    async def check(self) -> None:
        """Recompute `latest`. Raises DatabaseUnavailable (`latest` unchanged)."""
        snapshot = self._snapshot_of()
        if snapshot is None:
            return
        now = self._clock()
        live = [test for test in snapshot.config.abtests.values() if test.is_live(now)]
        tallies = self._subject_tallies(snapshot) if live else Counter[int]()
        latest = {}
        for test in live:
            rows = await read_exposure_counts(self._db, test.name)
            latest[test.name] = health_of(test, tallies, rows)
        self.latest = latest
        for test in live:
            health = latest[test.name]
            if health.state != "red":
                continue
            if self._stopper is None:
                continue  # a replica reports; the admin server acts
            if test.auto_stop:
                await self._stop(self._stopper, test.name, health)
            await self._pause_plans(self._stopper, test.name, health)

    async def _stop(self, admin: AsyncFlaggery, name: str, health: AbTestHealth) -> None:
        p = _lowest_p(health)
        reason = f"auto_stop: sample ratio mismatch, red (sequential p {p:.2g})"
        try:
            with acting_as(reason):
                await admin.stop_abtest(name)
        except AbTestNotLive:
            return  # stopped meanwhile, by someone else or another worker
        log.warning("Stopped the A/B test %r: its health is red (sequential p %.2g)", name, p)

    async def _pause_plans(self, admin: AsyncFlaggery, name: str, health: AbTestHealth) -> None:
        """A release plan ramping a variant this test sets pauses (docs/delivery.md): its
        exposures say the clients do not see what they are served. Idempotent: a paused
        plan is not written again at the next check."""
        reason = f"sample ratio mismatch, red (sequential p {_lowest_p(health):.2g})"
        try:
            with acting_as("health: " + reason):
                paused = await admin.pause_plans_in_test(name, reason)
        except FlaggeryError:
            log.exception("Could not pause the release plans of the red A/B test %r", name)
            return
        for feature in paused:
            log.warning("Paused the release plan of %r: the A/B test %r is red", feature, name)

    async def run(self, interval: float = HEALTH_CHECK_SECONDS) -> None:
        """Check every `interval` seconds until cancelled; failures are logged."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.check()
            except DatabaseUnavailable as error:
                log.warning("Checking the A/B tests' health failed: %s", error)


def _lowest_p(health: AbTestHealth) -> float:
    return min(population.sequential_p for population in health.populations)
