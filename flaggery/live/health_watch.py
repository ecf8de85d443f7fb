"""The health of every live A/B test, recomputed from the database at an interval.

A server with a database keeps `HealthWatch.latest`: test name -> its `AbTestHealth`
(registered subjects counted one each), for the tests live at the last check. The HTTP layer
copies it into Prometheus gauges (sequential p and state per live test). A check reads each
live test's counters (one query per test) and, once per snapshot, the bucket tallies of the
registered subjects (a pass over them: the same cost as GET /v1/abtests/{name}/health).

When a check finds a test red:
- on an admin server (``stopper`` given), a test with ``auto_stop`` is stopped: one write,
  whose actor says why (``auto_stop: ...``, in the history);
- every ``on_red`` callback is awaited with the test's name and health, at every check while
  it stays red (a release plan using the test pauses; the callbacks must be idempotent).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable

from flaggery.clock import Clock
from flaggery.engine.expected_shares import bucket_tallies
from flaggery.engine.health_report import AbTestHealth, health_of
from flaggery.engine.snapshot import Snapshot
from flaggery.errors import AbTestNotLive, DatabaseUnavailable
from flaggery.store.actor import acting_as
from flaggery.store.database import Database
from flaggery.store.exposures import read_exposure_counts
from flaggery.store.repository import AsyncFlaggery

__all__ = ["HEALTH_CHECK_SECONDS", "HealthWatch", "RedCallback"]

log = logging.getLogger(__name__)

RedCallback = Callable[[str, AbTestHealth], Awaitable[None]]
"""(test name, its health): what `HealthWatch.on_red` awaits."""
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
        self.on_red: list[RedCallback] = []
        """Awaited for each red test at each check (see the module docstring)."""
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
            if test.auto_stop and self._stopper is not None:
                await self._stop(test.name, health)
            for callback in self.on_red:
                try:
                    await callback(test.name, health)
                except Exception:
                    log.exception("A callback for the red A/B test %r failed", test.name)

    async def _stop(self, name: str, health: AbTestHealth) -> None:
        assert self._stopper is not None
        p = min(population.sequential_p for population in health.populations)
        reason = f"auto_stop: sample ratio mismatch, red (sequential p {p:.2g})"
        try:
            with acting_as(reason):
                await self._stopper.stop_abtest(name)
        except AbTestNotLive:
            return  # stopped meanwhile, by someone else or another worker
        log.warning("Stopped the A/B test %r: its health is red (sequential p %.2g)", name, p)

    async def run(self, interval: float = HEALTH_CHECK_SECONDS) -> None:
        """Check every `interval` seconds until cancelled; failures are logged."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.check()
            except DatabaseUnavailable as error:
                log.warning("Checking the A/B tests' health failed: %s", error)
