"""``from flaggery.core import Flaggery``: the synchronous API of flaggery 0.2.1, kept.

Each method runs the same-named AsyncFlaggery coroutine on a private event loop in a daemon
thread and waits for it. Because that loop is private, the facade works from plain scripts,
from worker threads, and from a running loop's thread pool (``run_in_executor``) alike.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from concurrent.futures import Future
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, TypeVar, overload

from sqlalchemy.engine import URL

from flaggery.clock import Clock, utc_now
from flaggery.engine import SUBJECT_ATTRIBUTE, Evaluation, Explanation, KeyExplanation
from flaggery.engine.expected_shares import ShareBasis
from flaggery.engine.exposures import Exposure
from flaggery.engine.health_report import AbTestHealth
from flaggery.engine.model import JsonValue
from flaggery.store.audit_trail import ChangePage, HistoryPage
from flaggery.store.plans import PlanRecord, PlanStep
from flaggery.store.records import (
    AbTestRecord,
    BucketsRecord,
    FeatureRecord,
    GroupRecord,
    PlacementRecord,
    RolloutRecord,
    SubjectRecord,
)
from flaggery.store.repository import AsyncFlaggery
from flaggery.store.revert import RevertPreview
from flaggery.store.schedules import ScheduledStep, ScheduleRecord
from flaggery.store.webhook_targets import TargetPolicy
from flaggery.store.webhooks import WebhookRecord

__all__ = ["Flaggery"]

T = TypeVar("T")


class _LoopThread:
    """An event loop running forever in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="flaggery-sync-facade", daemon=True
        )
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self._thread:
            coroutine.close()
            raise RuntimeError("Flaggery (sync) cannot be called from its own event loop.")
        future: Future[T] = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result()

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class Flaggery:
    """The synchronous admin API. ``Flaggery.from_db_url(url)``; ``close()`` when done (or use
    it as a context manager).

    Every method runs the same-named `AsyncFlaggery` method to completion and blocks the
    calling thread meanwhile: same arguments, results, exceptions and costs, so each shares
    its async twin's docstring (set below the class). Calling it from inside its own private
    event loop (a callback scheduled there) raises RuntimeError.
    """

    def __init__(self, store: AsyncFlaggery, loop_thread: _LoopThread) -> None:
        self._store = store
        self._loop_thread = loop_thread
        self._finalizer = weakref.finalize(self, _shutdown, store, loop_thread)

    @classmethod
    def from_db_url(
        cls,
        url: str | URL,
        *,
        clock: Clock = utc_now,
        actor: str | None = None,
        webhook_policy: TargetPolicy | None = None,
    ) -> Flaggery:
        """A Flaggery on ``url``, with its private event loop thread started (no connection
        yet). ``clock``, ``actor`` and ``webhook_policy`` as in `AsyncFlaggery.from_db_url`."""
        loop_thread = _LoopThread()

        async def create() -> AsyncFlaggery:
            # Created on the private loop: the engine's connections belong to that loop.
            return AsyncFlaggery.from_db_url(
                url, clock=clock, actor=actor, webhook_policy=webhook_policy
            )

        return cls(loop_thread.run(create()), loop_thread)

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self._loop_thread.run(coroutine)

    def close(self) -> None:
        """Close the connection pool and stop the loop thread. Safe to call twice; also run
        when the object is garbage-collected."""
        self._finalizer()

    def __enter__(self) -> Flaggery:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def upgrade_db(self) -> None:
        self._run(self._store.upgrade_db())

    def revision(self) -> int:
        return self._run(self._store.revision())

    def increase_buckets(self, amount: int) -> list[int]:
        return self._run(self._store.increase_buckets(amount))

    def get_buckets(self) -> BucketsRecord:
        return self._run(self._store.get_buckets())

    @overload
    def add_subject(self, sub_id: int, weight: int = 1) -> int: ...

    @overload
    def add_subject(self, sub_id: int, weight: int = 1, *, like_key: str) -> PlacementRecord: ...

    def add_subject(
        self, sub_id: int, weight: int = 1, *, like_key: str | None = None
    ) -> int | PlacementRecord:
        if like_key is None:
            return self._run(self._store.add_subject(sub_id, weight))
        return self._run(self._store.add_subject(sub_id, weight, like_key=like_key))

    def add_subjects(self, subjects: Iterable[tuple[int, int]]) -> list[int]:
        return self._run(self._store.add_subjects(list(subjects)))

    def add_subjects_like_keys(
        self, subjects: Iterable[tuple[int, int, str | None]]
    ) -> list[int | PlacementRecord]:
        return self._run(self._store.add_subjects_like_keys(list(subjects)))

    def rm_subject(self, sub_id: int, *, forget: bool = False) -> None:
        self._run(self._store.rm_subject(sub_id, forget=forget))

    def set_subject_weight(self, sub_id: int, weight: int) -> None:
        self._run(self._store.set_subject_weight(sub_id, weight))

    def get_subject(self, sub_id: int) -> SubjectRecord:
        return self._run(self._store.get_subject(sub_id))

    def get_subject_variants(self, sub_id: int) -> dict[str, str]:
        return self._run(self._store.get_subject_variants(sub_id))

    def explain(self, sub_id: int) -> Explanation:
        return self._run(self._store.explain(sub_id))

    def evaluate(
        self,
        key: str,
        context: Mapping[str, object] | None = None,
        subject_attribute: str = SUBJECT_ATTRIBUTE,
    ) -> Evaluation:
        return self._run(self._store.evaluate(key, context, subject_attribute))

    def explain_key(
        self,
        key: str,
        context: Mapping[str, object] | None = None,
        subject_attribute: str = SUBJECT_ATTRIBUTE,
    ) -> KeyExplanation:
        return self._run(self._store.explain_key(key, context, subject_attribute))

    def record_exposures(self, exposures: Sequence[Exposure]) -> None:
        self._run(self._store.record_exposures(exposures))

    def abtest_health(self, test_name: str, basis: ShareBasis = "subjects") -> AbTestHealth:
        return self._run(self._store.abtest_health(test_name, basis))

    def add_feature(self, feature_name: str) -> None:
        self._run(self._store.add_feature(feature_name))

    def rm_feature(self, feature_name: str, *, if_revision: int | None = None) -> None:
        self._run(self._store.rm_feature(feature_name, if_revision=if_revision))

    def list_features(self) -> list[str]:
        return self._run(self._store.list_features())

    def get_feature(self, feature_name: str) -> FeatureRecord:
        return self._run(self._store.get_feature(feature_name))

    def add_variant(
        self,
        variant_name: str,
        feature_name: str,
        make_default: bool = False,
        value: JsonValue | None = None,
        *,
        if_revision: int | None = None,
    ) -> None:
        self._run(
            self._store.add_variant(
                variant_name, feature_name, make_default, value, if_revision=if_revision
            )
        )

    def set_variant_value(
        self,
        variant_name: str,
        feature_name: str,
        value: JsonValue | None,
        *,
        if_revision: int | None = None,
    ) -> None:
        """The value OpenFeature clients get for the variant; None: its name again."""
        self._run(
            self._store.set_variant_value(
                variant_name, feature_name, value, if_revision=if_revision
            )
        )

    def add_disabling_variant(
        self, feature_name: str, make_default: bool = False, *, if_revision: int | None = None
    ) -> None:
        self._run(
            self._store.add_disabling_variant(feature_name, make_default, if_revision=if_revision)
        )

    def rm_variant(
        self, variant_name: str, feature_name: str, *, if_revision: int | None = None
    ) -> None:
        self._run(self._store.rm_variant(variant_name, feature_name, if_revision=if_revision))

    def set_default_feature_variant(
        self, feature_name: str, variant_name: str, *, if_revision: int | None = None
    ) -> None:
        self._run(
            self._store.set_default_feature_variant(
                feature_name, variant_name, if_revision=if_revision
            )
        )

    def add_rollout(
        self,
        variant_name: str,
        feature_name: str,
        *,
        proportion: float = 0.0,
        audience: str | None = None,
        if_revision: int | None = None,
    ) -> None:
        self._run(
            self._store.add_rollout(
                variant_name,
                feature_name,
                proportion=proportion,
                audience=audience,
                if_revision=if_revision,
            )
        )

    def get_rollout(self, feature_name: str) -> RolloutRecord:
        return self._run(self._store.get_rollout(feature_name))

    def set_rollout_variant(
        self, variant_name: str, feature_name: str, *, if_revision: int | None = None
    ) -> None:
        self._run(
            self._store.set_rollout_variant(variant_name, feature_name, if_revision=if_revision)
        )

    def set_rollout_proportion(
        self, feature_name: str, proportion: float, *, if_revision: int | None = None
    ) -> None:
        self._run(
            self._store.set_rollout_proportion(feature_name, proportion, if_revision=if_revision)
        )

    def set_rollout(
        self,
        feature_name: str,
        variant_name: str | None = None,
        proportion: float | None = None,
        audience: str | None = None,
        *,
        if_revision: int | None = None,
    ) -> None:
        self._run(
            self._store.set_rollout(
                feature_name, variant_name, proportion, audience, if_revision=if_revision
            )
        )

    def set_rollout_audience(
        self, feature_name: str, group_name: str | None, *, if_revision: int | None = None
    ) -> None:
        self._run(
            self._store.set_rollout_audience(feature_name, group_name, if_revision=if_revision)
        )

    def kill_switch(self, feature_name: str, *, if_revision: int | None = None) -> None:
        self._run(self._store.kill_switch(feature_name, if_revision=if_revision))

    def unkill(self, feature_name: str, *, if_revision: int | None = None) -> None:
        self._run(self._store.unkill(feature_name, if_revision=if_revision))

    def rm_rollout(self, feature_name: str, *, if_revision: int | None = None) -> None:
        self._run(self._store.rm_rollout(feature_name, if_revision=if_revision))

    def preview_rollout_proportion(self, feature_name: str, proportion: float) -> int:
        """The effective weight the rollout would hold at ``proportion``; writes nothing."""
        return self._run(self._store.preview_rollout_proportion(feature_name, proportion))

    def add_group(self, group_name: str) -> None:
        self._run(self._store.add_group(group_name))

    def list_groups(self) -> list[str]:
        return self._run(self._store.list_groups())

    def get_group(self, group_name: str) -> GroupRecord:
        return self._run(self._store.get_group(group_name))

    def rm_group(self, group_name: str, *, if_revision: int | None = None) -> None:
        self._run(self._store.rm_group(group_name, if_revision=if_revision))

    def set_group_rule(
        self, group_name: str, rule: object, *, if_revision: int | None = None
    ) -> None:
        self._run(self._store.set_group_rule(group_name, rule, if_revision=if_revision))

    def rm_group_rule(self, group_name: str, *, if_revision: int | None = None) -> None:
        self._run(self._store.rm_group_rule(group_name, if_revision=if_revision))

    def add_subject_to_group(self, sub_id: int, group_name: str) -> None:
        self._run(self._store.add_subject_to_group(sub_id, group_name))

    def add_subjects_to_group(self, sub_ids: Iterable[int], group_name: str) -> None:
        self._run(self._store.add_subjects_to_group(list(sub_ids), group_name))

    def rm_subject_from_group(self, sub_id: int, group_name: str) -> None:
        self._run(self._store.rm_subject_from_group(sub_id, group_name))

    def add_group_override(
        self,
        group_name: str,
        feature_name: str,
        variant_name: str,
        *,
        if_revision: int | None = None,
    ) -> None:
        self._run(
            self._store.add_group_override(
                group_name, feature_name, variant_name, if_revision=if_revision
            )
        )

    def rm_group_override(
        self, group_name: str, feature_name: str, *, if_revision: int | None = None
    ) -> None:
        self._run(self._store.rm_group_override(group_name, feature_name, if_revision=if_revision))

    def add_abtest(  # noqa: PLR0913 - 0.2.1's arguments, then keyword-only options
        self,
        test_name: str,
        start: datetime | None,
        end: datetime,
        groups: Mapping[str, Mapping[str, str]],
        proportions: Sequence[float] | None = None,
        audience: str | None = None,
    ) -> None:
        self._run(self._store.add_abtest(test_name, start, end, groups, proportions, audience))

    def set_abtest_audience(
        self, test_name: str, group_name: str | None, *, if_revision: int | None = None
    ) -> None:
        self._run(self._store.set_abtest_audience(test_name, group_name, if_revision=if_revision))

    def set_abtest_auto_stop(
        self, test_name: str, enabled: bool, *, if_revision: int | None = None
    ) -> None:
        self._run(self._store.set_abtest_auto_stop(test_name, enabled, if_revision=if_revision))

    def stop_abtest(self, test_name: str, *, if_revision: int | None = None) -> None:
        self._run(self._store.stop_abtest(test_name, if_revision=if_revision))

    def rm_abtest(self, test_name: str, *, if_revision: int | None = None) -> None:
        self._run(self._store.rm_abtest(test_name, if_revision=if_revision))

    def get_abtest(self, test_name: str) -> AbTestRecord:
        return self._run(self._store.get_abtest(test_name))

    def list_abtests(self) -> list[str]:
        return self._run(self._store.list_abtests())

    def changes(  # noqa: PLR0913 - 0.2.1's filters, keyword-only
        self,
        after: int = 0,
        limit: int = 100,
        *,
        feature: str | None = None,
        group: str | None = None,
        test: str | None = None,
        subject: int | None = None,
    ) -> ChangePage:
        return self._run(
            self._store.changes(
                after, limit, feature=feature, group=group, test=test, subject=subject
            )
        )

    def add_webhook(  # noqa: PLR0913 - the filter's names, keyword-only
        self,
        name: str,
        url: str,
        secret: str,
        *,
        feature: str | None = None,
        group: str | None = None,
        test: str | None = None,
        operation: str | None = None,
        after: int | None = None,
    ) -> WebhookRecord:
        return self._run(
            self._store.add_webhook(
                name,
                url,
                secret,
                feature=feature,
                group=group,
                test=test,
                operation=operation,
                after=after,
            )
        )

    def webhooks(self) -> list[WebhookRecord]:
        return self._run(self._store.webhooks())

    def get_webhook(self, name: str) -> WebhookRecord:
        return self._run(self._store.get_webhook(name))

    def remove_webhook(self, name: str) -> None:
        self._run(self._store.remove_webhook(name))

    def replay_webhook(self, name: str, from_revision: int) -> WebhookRecord:
        return self._run(self._store.replay_webhook(name, from_revision))

    def create_plan(
        self,
        feature_name: str,
        variant_name: str,
        steps: Sequence[PlanStep | tuple[float, timedelta | None]],
        start: datetime | None = None,
    ) -> PlanRecord:
        return self._run(self._store.create_plan(feature_name, variant_name, steps, start))

    def get_plan(self, feature_name: str) -> PlanRecord:
        return self._run(self._store.get_plan(feature_name))

    def list_plans(self) -> list[PlanRecord]:
        return self._run(self._store.list_plans())

    def pause_plan(self, feature_name: str, reason: str = "") -> PlanRecord:
        return self._run(self._store.pause_plan(feature_name, reason))

    def resume_plan(self, feature_name: str) -> PlanRecord:
        return self._run(self._store.resume_plan(feature_name))

    def rollback_plan(self, feature_name: str, to_step: int = -1) -> PlanRecord:
        return self._run(self._store.rollback_plan(feature_name, to_step))

    def skip_plan(self, feature_name: str, to_step: int | None = None) -> PlanRecord:
        return self._run(self._store.skip_plan(feature_name, to_step))

    def pause_plans_in_test(self, test_name: str, reason: str) -> list[str]:
        return self._run(self._store.pause_plans_in_test(test_name, reason))

    def rm_plan(self, feature_name: str) -> None:
        self._run(self._store.rm_plan(feature_name))

    def advance_due_plans(self) -> list[str]:
        return self._run(self._store.advance_due_plans())

    def create_schedule(self, name: str, steps: Sequence[ScheduledStep]) -> ScheduleRecord:
        return self._run(self._store.create_schedule(name, steps))

    def edit_schedule(self, name: str, steps: Sequence[ScheduledStep]) -> ScheduleRecord:
        return self._run(self._store.edit_schedule(name, steps))

    def cancel_schedule(self, name: str) -> ScheduleRecord:
        return self._run(self._store.cancel_schedule(name))

    def get_schedule(self, name: str) -> ScheduleRecord:
        return self._run(self._store.get_schedule(name))

    def list_schedules(self, *, pending_only: bool = False) -> list[ScheduleRecord]:
        return self._run(self._store.list_schedules(pending_only=pending_only))

    def apply_due_schedules(self) -> list[str]:
        return self._run(self._store.apply_due_schedules())

    def apply_due(self) -> list[str]:
        return self._run(self._store.apply_due())

    def history(  # noqa: PLR0913 - the filters of `changes`, keyword-only
        self,
        before: int | None = None,
        limit: int = 50,
        *,
        feature: str | None = None,
        group: str | None = None,
        test: str | None = None,
        subject: int | None = None,
    ) -> HistoryPage:
        return self._run(
            self._store.history(
                before, limit, feature=feature, group=group, test=test, subject=subject
            )
        )

    def preview_revert(self, revision: int) -> RevertPreview:
        return self._run(self._store.preview_revert(revision))

    def revert(self, revision: int) -> RevertPreview:
        return self._run(self._store.revert(revision))

    def preview_restore_feature(self, feature_name: str, revision: int) -> RevertPreview:
        return self._run(self._store.preview_restore_feature(feature_name, revision))

    def restore_feature(self, feature_name: str, revision: int) -> RevertPreview:
        return self._run(self._store.restore_feature(feature_name, revision))


def _share_docstrings() -> None:
    """One text per method to keep true: each blocking method documents itself with its async
    twin's docstring."""
    for name, method in vars(Flaggery).items():
        twin = getattr(AsyncFlaggery, name, None)
        if callable(method) and method.__doc__ is None and twin is not None:
            method.__doc__ = twin.__doc__


_share_docstrings()


def _shutdown(store: AsyncFlaggery, loop_thread: _LoopThread) -> None:
    if not loop_thread.loop.is_closed():
        loop_thread.run(store.close())
        loop_thread.stop()
