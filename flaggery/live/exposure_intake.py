"""A server's exposure intake: accepted into memory, written to the database in batches.

``POST /v1/exposures`` validates and classifies a batch whole (all or none), then adds it to
this process's `ExposureTally`, which costs a few dictionary operations per exposure. Every
``FLAGGERY_EXPOSURE_FLUSH_INTERVAL`` seconds (1 s by default) the tally is written in one
transaction (`flaggery.store.exposures.flush_tally`), so the database sees one transaction per
interval per process, however many exposures arrive.

It also holds the flags routes' `AssignmentTally` (answers served per bucket; the serving
path adds to it): each flush credits those counts to the groups of the snapshot's live tests
and writes them in the same transaction, to ``assignment_counts``.

What a crash can lose: the exposures accepted since the last flush (one interval's worth).
A stop flushes once more. While the database is unreachable the tally is kept and the next
flush retries it; once `MAX_PENDING` exposures wait, new batches are refused with
DatabaseUnavailable (503), so memory stays bounded and the client knows to retry.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from flaggery.engine.assignment_tally import AssignmentTally, served_by_group
from flaggery.engine.exposure_tally import ExposureTally
from flaggery.engine.exposures import ClassifiedExposure, Classifier
from flaggery.engine.snapshot import Snapshot
from flaggery.errors import DatabaseUnavailable
from flaggery.store.database import Database
from flaggery.store.exposures import flush_tally

__all__ = ["MAX_PENDING", "ExposureIntake"]

log = logging.getLogger(__name__)

MAX_PENDING = 200_000
"""Exposures a process holds unwritten at most (10 s at 20,000/s; about 20 MB at most)."""


class ExposureIntake:
    """One per server process with a database; `run` is its flush loop."""

    def __init__(
        self,
        db: Database,
        interval: float,
        snapshot_of: Callable[[], Snapshot | None] = lambda: None,
        max_pending: int = MAX_PENDING,
    ) -> None:
        """`snapshot_of`: the current snapshot (None before the first), whose live tests the
        assignments are credited to."""
        self._db = db
        self._snapshot_of = snapshot_of
        self.assignments = AssignmentTally()
        """Answers served per bucket since the last flush: the flags routes add to it."""
        self._max_pending = max_pending
        self._interval = interval
        self._tally = ExposureTally()
        self._flushing = asyncio.Lock()
        self._classifier: Classifier | None = None

    def classifier(self, snapshot: Snapshot) -> Classifier:
        """A classifier of exposures against `snapshot`, kept while it is the current one."""
        if self._classifier is None or self._classifier.snapshot is not snapshot:
            self._classifier = Classifier(snapshot)
        return self._classifier

    @property
    def pending(self) -> int:
        """Exposures accepted and not written yet."""
        return self._tally.exposures

    def accept(self, exposures: Sequence[ClassifiedExposure]) -> None:
        """Add a classified batch, whole. Raises DatabaseUnavailable (nothing added) when
        `max_pending` exposures would wait for the database."""
        if self._tally.exposures + len(exposures) > self._max_pending:
            raise DatabaseUnavailable(
                f"{self._tally.exposures} exposures are waiting to be written to the database, "
                "which has not taken them yet: retry later."
            )
        add = self._tally.add
        for exposure in exposures:
            add(exposure)

    async def flush(self) -> None:
        """Write what was accepted so far. Raises DatabaseUnavailable: the tally is kept
        (ahead of what arrives meanwhile) for the next flush."""
        async with self._flushing:
            tally, self._tally = self._tally, ExposureTally()
            served, self.assignments.served = self.assignments.served, {}
            try:
                await flush_tally(self._db, tally, self._credited(served))
            except BaseException:
                tally.absorb(self._tally)
                self._tally = tally
                self.assignments.absorb(served)
                raise

    def _credited(self, served: dict[int | None, int]) -> dict[tuple[str, str], int]:
        """`served` per (test, group) of the current snapshot's live tests. Answers are only
        served from a snapshot, so there is one whenever `served` holds any."""
        snapshot = self._snapshot_of()
        if snapshot is None or not served:
            return {}
        tests = snapshot.config.abtests
        return served_by_group(served, (tests[name] for name in snapshot.live_tests))

    async def run(self) -> None:
        """Flush every interval until cancelled; failures are logged and retried."""
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.flush()
            except DatabaseUnavailable as error:
                log.warning(
                    "Exposures not written (%s); %d wait for the next try", error, self.pending
                )

    async def close(self) -> None:
        """The last flush, at stop: what it cannot write is lost, and logged."""
        try:
            await self.flush()
        except DatabaseUnavailable as error:
            log.error("%d exposures were not written before stopping: %s", self.pending, error)
