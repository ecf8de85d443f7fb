"""AsyncFlaggery: the async admin API of flaggery, over SQLAlchemy asyncio.

Method names and argument order are flaggery 0.2.1's. Each write is applied on its own inside
a transaction it may share with concurrent writes (flaggery.store.database); the operations
live in one module per entity and are combined here.
``get_subject_variants`` resolves through the same snapshot engine as the HTTP server, caught
up to the database's current revision first, so a read right after a write sees it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType

from sqlalchemy.engine import URL

from flaggery.clock import Clock, utc_now
from flaggery.engine import (
    SUBJECT_ATTRIBUTE,
    Evaluation,
    Explanation,
    KeyExplanation,
    Snapshot,
)
from flaggery.engine.expected_shares import ShareBasis
from flaggery.engine.exposures import Exposure, classify
from flaggery.engine.health_report import AbTestHealth
from flaggery.store.abtests import AbTestsAdmin
from flaggery.store.audit_trail import (
    ChangeFilter,
    ChangePage,
    HistoryPage,
    read_changes,
    read_history,
)
from flaggery.store.database import Database
from flaggery.store.exposures import health_from, record_exposures
from flaggery.store.features import FeaturesAdmin
from flaggery.store.groups import GroupsAdmin
from flaggery.store.migrations import upgrade
from flaggery.store.plans import PlansAdmin
from flaggery.store.replica import Replica
from flaggery.store.revert import RevertAdmin
from flaggery.store.rollouts import RolloutsAdmin
from flaggery.store.schedules import SchedulesAdmin
from flaggery.store.subjects.admin import SubjectsAdmin
from flaggery.store.validation import check_subject_id
from flaggery.store.webhook_targets import TargetPolicy
from flaggery.store.webhooks import WebhooksAdmin

__all__ = ["AsyncFlaggery"]


class AsyncFlaggery(
    SubjectsAdmin,
    FeaturesAdmin,
    RolloutsAdmin,
    GroupsAdmin,
    AbTestsAdmin,
    PlansAdmin,
    SchedulesAdmin,
    WebhooksAdmin,
    RevertAdmin,
):
    """The async admin API. Create with ``AsyncFlaggery.from_db_url(url)``; close with
    ``await close()`` or ``async with``. URLs as 0.2.1 users wrote them (``postgresql://``,
    ``postgresql+psycopg2://``, ``sqlite:///path``) are mapped to the async drivers.

    Every write is validated and applied on its own, all or nothing, with its own revision and
    change-log row: a few milliseconds on PostgreSQL. Writes made concurrently on one
    AsyncFlaggery share one transaction and one commit (group commit,
    flaggery.store.group_commit); each returns once that commit has. Any method raises
    DatabaseUnavailable when the database cannot be reached (a write then wrote nothing),
    and ValidationError for a malformed argument (the message says what is allowed); the
    other errors are listed per method. Reads query the database, except
    `get_subject_variants`, which resolves from a snapshot (see its cost).
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._replica = Replica(db, db.clock)

    @classmethod
    def from_db_url(
        cls,
        url: str | URL,
        *,
        clock: Clock = utc_now,
        actor: str | None = None,
        webhook_policy: TargetPolicy | None = None,
    ) -> AsyncFlaggery:
        """An AsyncFlaggery on ``url``; nothing is connected until the first call.

        ``clock`` (returns an aware UTC datetime) is read for A/B-test liveness and
        creation checks; tests inject a fake one. ``actor`` is recorded on the change-log
        row of every write (see `changes`); default: the OS user running this process
        (flaggery.store.actor.default_actor). Up to 200 characters are kept.
        ``webhook_policy``: which addresses `add_webhook` may subscribe (default: no
        loopback, no private range; flaggery.store.webhook_targets).
        """
        store = cls(Database(url, clock=clock, actor=None if actor is None else actor[:200]))
        if webhook_policy is not None:
            store.webhook_policy = webhook_policy
        return store

    @property
    def database(self) -> Database:
        """The underlying `Database` (engine, clock, write transactions), for the HTTP app
        and tests; not part of 0.2.1's API."""
        return self._db

    async def upgrade_db(self) -> None:
        """Migrate the database to the latest schema (idempotent).

        Raises DatabaseUnavailable if the database cannot be reached (nothing is migrated).
        """
        await upgrade(self._db.engine)

    async def revision(self) -> int:
        """The revision of the last committed write (0 for an empty database): pass it to
        `Evaluator.wait_for_revision` to read your own writes from another process.
        """
        return await self._db.revision()

    async def changes(  # noqa: PLR0913 - 0.2.1's filters, keyword-only
        self,
        after: int = 0,
        limit: int = 100,
        *,
        feature: str | None = None,
        group: str | None = None,
        test: str | None = None,
        subject: int | None = None,
    ) -> ChangePage:
        """The history: up to ``limit`` (1-1000) writes after revision ``after``, oldest first,
        each with its UTC time, actor, operation and facts. With filters, only the writes
        touching that feature (its variants, rollout, A/B tests or group overrides), group
        (itself or its members), A/B test or subject; several filters keep the writes touching
        all of their names. A write too large to itemize is always kept. Continue from
        ``page.next_after``; ``page.gone`` says rows after ``after`` were pruned by retention
        (FLAGGERY_CHANGE_LOG_RETENTION_*).

        Cost: one indexed query of at most `limit` rows, with a filter too (the index of names).
        Raises ValidationError, DatabaseUnavailable.
        """
        keep = ChangeFilter(feature, group, test, subject)
        return await read_changes(self._db, after, limit, keep)

    async def history(  # noqa: PLR0913 - the filters of `changes`, keyword-only
        self,
        before: int | None = None,
        limit: int = 50,
        *,
        feature: str | None = None,
        group: str | None = None,
        test: str | None = None,
        subject: int | None = None,
    ) -> HistoryPage:
        """The history newest first, as the dashboard's History shows it: up to ``limit``
        writes before revision ``before`` (None: the latest), filtered as `changes` filters.
        Continue with ``before=page.older`` (None: nothing older). Cost: one indexed query of
        at most `limit` rows. Raises ValidationError, DatabaseUnavailable."""
        start = await self._db.revision() + 1 if before is None else before
        keep = ChangeFilter(feature, group, test, subject)
        return await read_history(self._db, start, limit, keep)

    async def get_subject_variants(self, sub_id: int) -> dict[str, str]:
        """{feature: variant} for the subject, as of the latest committed write.

        Cost: the first call loads every subject into this object's snapshot (about 2 s and 84 MiB
        for 1,000,000 subjects, bench/load_bench.py), kept until `close`; later calls read the
        change log since the previous one and then resolve from memory. Raises SubjectNotFound,
        ValidationError (an id outside signed 64 bits), DatabaseUnavailable.
        """
        check_subject_id(sub_id)
        return dict((await self._caught_up()).variants(sub_id))

    async def explain(self, sub_id: int) -> Explanation:
        """Per feature, the subject's variant and where it comes from (default, rollout with its
        proportion, A/B test and group, group override), as of the latest committed write;
        `SubjectNotFound` if unknown."""
        check_subject_id(sub_id)
        return (await self._caught_up()).explain(sub_id)

    async def evaluate(
        self,
        key: str,
        context: Mapping[str, object] | None = None,
        subject_attribute: str = SUBJECT_ATTRIBUTE,
    ) -> Evaluation:
        """What targeting key `key` gets with evaluation context `context`, as of the latest
        committed write (`Snapshot.evaluate`: any key, registered subject or hashed). Same cost
        as get_subject_variants. Raises InvalidTargetingKey, DatabaseUnavailable."""
        snapshot = await self._caught_up()
        return snapshot.evaluate(key, context, subject_attribute, self._replica.clock())

    async def explain_key(
        self,
        key: str,
        context: Mapping[str, object] | None = None,
        subject_attribute: str = SUBJECT_ATTRIBUTE,
    ) -> KeyExplanation:
        """Why `evaluate` answers as it does: hashed or registered, the bucket, and per
        feature where the variant comes from. Raises InvalidTargetingKey."""
        snapshot = await self._caught_up()
        return snapshot.explain_key(key, context, subject_attribute, self._replica.clock())

    async def record_exposures(self, exposures: Sequence[Exposure]) -> None:
        """Count `exposures` (what clients showed: targeting key, A/B test, test group, aware
        time), all or nothing, in one transaction: a unit's first exposure in the test's window
        counts for the group reported; later ones count as repeats; one whose group is not the
        one the allocation (as of the latest committed write) assigns also counts as
        misassigned; one timed outside the window counts as early or late only. Raises
        AbTestNotFound, ValidationError (a group the test lacks), InvalidTargetingKey,
        DatabaseUnavailable; nothing is counted then."""
        snapshot = await self._caught_up()
        await record_exposures(self._db, [classify(snapshot, e) for e in exposures])

    async def abtest_health(self, test_name: str, basis: ShareBasis = "subjects") -> AbTestHealth:
        """The test's health (flaggery.engine.health_report): per population the expected and
        observed split, chi-squared and anytime-valid sequential p, green/yellow/red; repeats,
        misassigned, early and late exposures; the per-bucket table. `basis`: registered
        subjects count one each, or by weight. Same cost as get_subject_variants, plus a
        pass over the subjects. Raises AbTestNotFound, DatabaseUnavailable."""
        snapshot = await self._caught_up()
        return await health_from(self._db, snapshot, test_name, basis)

    async def apply_due(self) -> list[str]:
        """Apply what is due: every due scheduled step (`apply_due_schedules`), then every
        due release-plan step (`advance_due_plans`); what was applied, as ``schedule:<name>``
        and ``plan:<feature>``. The admin server runs it every second; safe to run in any
        number of processes at once (each step is applied once)."""
        schedules = await self.apply_due_schedules()
        plans = await self.advance_due_plans()
        return [f"schedule:{name}" for name in schedules] + [f"plan:{f}" for f in plans]

    async def _caught_up(self) -> Snapshot:
        """The snapshot as of the latest committed write (same cost as get_subject_variants)."""
        return await self._replica.catch_up(await self._db.head())

    async def close(self) -> None:
        """Close the connection pool. Safe to call twice."""
        await self._db.dispose()

    async def __aenter__(self) -> AsyncFlaggery:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
