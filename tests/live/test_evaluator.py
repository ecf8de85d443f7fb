"""The Evaluator follows the database: writes from anywhere, reconnects, and the clock."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from flaggery import errors
from flaggery.live.evaluator import Evaluator
from flaggery.store.repository import AsyncFlaggery
from flaggery.store.urls import libpq_dsn
from tests.fakes import FakeClock
from tests.live.helpers import assert_matches_database, eventually, has_subject, seed


async def test_follows_every_write(db_url: str, clock: FakeClock) -> None:
    async with AsyncFlaggery.from_db_url(db_url, clock=clock) as store:
        await seed(store)
        async with Evaluator.from_db_url(db_url, clock=clock) as ev:
            assert ev.revision == await store.revision()
            await store.set_rollout_proportion("checkout", 0.5)
            await store.add_group("staff")
            await store.add_subject_to_group(7, "staff")
            await store.add_group_override("staff", "checkout", "new")
            await store.add_subject(1000, 3)
            await ev.wait_for_revision(await store.revision(), timeout=5)
            await assert_matches_database(ev, store, clock.now)
            assert ev.variant(7, "checkout") == "new"
            assert ev.flags_json(7) == b'{"flags":{"checkout":"new"}}'
            assert ev.explain(7).features["checkout"].group == "staff"
            assert ev.subject(1000).weight == 3
            await store.rm_subject(1000)
            await ev.wait_for_revision(await store.revision(), timeout=5)
            with pytest.raises(errors.SubjectNotFound):
                ev.variants(1000)
            assert ev.counts.full == 1, "subject and rollout writes apply incrementally"


async def test_own_writes_apply_only_while_started(db_url: str, clock: FakeClock) -> None:
    """An evaluator on the writing handle listens to its commits only while started: a stopped
    one leaves the handle's commit listeners as they were, and its snapshot as it was."""
    async with AsyncFlaggery.from_db_url(db_url, clock=clock) as store:
        await seed(store)
        listeners = store.database.commit_listeners
        ev = Evaluator(store.database)
        assert listeners == []
        async with ev:
            assert len(listeners) == 1
            await store.add_subject(1000, 3)
            await ev.wait_for_revision(await store.revision(), timeout=5)
            assert ev.subject(1000).weight == 3
        assert listeners == []
        await store.add_subject(1001, 3)
        assert not has_subject(ev, 1001)


async def test_unknown_subjects_get_the_defaults_when_asked(db_url: str, clock: FakeClock) -> None:
    async with AsyncFlaggery.from_db_url(db_url, clock=clock) as store:
        await seed(store)
        await store.set_rollout_proportion("checkout", 1.0)
        async with Evaluator.from_db_url(db_url, clock=clock) as ev:
            assert ev.variant(7, "checkout") == "new"  # the rollout, for a known subject
            assert dict(ev.variants_or_defaults(1000)) == {"checkout": "old"}
            assert ev.variant_or_default(1000, "checkout") == "old"
            assert ev.variant_or_default(1000, "nope") is None
            with pytest.raises(errors.SubjectNotFound):  # still the default behaviour
                ev.variant(1000, "checkout")


async def test_abtest_starts_and_ends_on_time_without_a_write(
    db_url: str, clock: FakeClock
) -> None:
    async with AsyncFlaggery.from_db_url(db_url, clock=clock) as store:
        await seed(store)
        start = clock.now + timedelta(hours=1)
        groups = {"a": {"checkout": "new"}, "b": {"checkout": "new"}}
        await store.add_abtest("t", start, start + timedelta(hours=1), groups)
        async with Evaluator.from_db_url(db_url, clock=clock) as ev:
            assert ev.variant(3, "checkout") == "old"
            revision = ev.revision
            clock.advance(hours=1)
            await eventually(lambda: ev.variant(3, "checkout") == "new")
            clock.advance(hours=1, seconds=1)
            await eventually(lambda: ev.variant(3, "checkout") == "old")
            assert ev.revision == revision


WRITER = textwrap.dedent(
    """
    import sys
    from flaggery.core import Flaggery
    with Flaggery.from_db_url(sys.argv[1]) as flaggery:
        flaggery.add_subject(5000, 2)
        flaggery.set_rollout_proportion("checkout", 1)
    """
)


async def test_writes_in_another_process_reach_the_evaluator(db_url: str, clock: FakeClock) -> None:
    async with AsyncFlaggery.from_db_url(db_url, clock=clock) as store:
        await seed(store)
        async with Evaluator.from_db_url(db_url, clock=clock) as ev:
            process = await asyncio.create_subprocess_exec(sys.executable, "-c", WRITER, db_url)
            assert await process.wait() == 0
            await eventually(lambda: has_subject(ev, 5000), timeout=10)
            await ev.wait_for_revision(await store.revision(), timeout=5)
            assert ev.variant(5000, "checkout") == "new"
            await assert_matches_database(ev, store, clock.now)


async def test_listener_reconnects_and_resyncs_after_termination(
    db_url: str, is_postgres: bool, clock: FakeClock
) -> None:
    if not is_postgres:
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    dsn = libpq_dsn(make_url(db_url))
    async with AsyncFlaggery.from_db_url(db_url, clock=clock) as store:
        await seed(store)
        async with Evaluator.from_db_url(db_url, clock=clock) as ev:
            admin = await asyncpg.connect(dsn)
            try:
                terminated = await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
                )
            finally:
                await admin.close()
            assert terminated == 1
            # Written while the listener is down: its NOTIFY is lost, the resync finds it.
            await store.add_subject(6000, 1)
            await ev.wait_for_revision(await store.revision(), timeout=10)
            assert has_subject(ev, 6000)
            assert ev.counts.reconnects >= 1 and ev.counts.full >= 2
            await store.set_rollout_proportion("checkout", 0.3)
            await ev.wait_for_revision(await store.revision(), timeout=5)
            await assert_matches_database(ev, store, clock.now)


async def test_a_subject_id_of_the_wrong_type_is_invalid_input(
    db_url: str, clock: FakeClock
) -> None:
    async with AsyncFlaggery.from_db_url(db_url, clock=clock) as store:
        await seed(store)
        async with Evaluator.from_db_url(db_url, clock=clock) as ev:
            reads: list[Callable[[Any], object]] = [
                ev.variants, ev.variants_or_defaults, ev.flags_json, ev.flags_etag, ev.subject,
                ev.explain, lambda s: ev.variant(s, "checkout"),
                lambda s: ev.variant_or_default(s, "checkout"),
            ]  # fmt: skip
            for read in reads:
                for wrong in ("42", 4.0, True, None, b"7"):
                    with pytest.raises(errors.InvalidInput, match="A subject id is an int"):
                        read(wrong)
            assert ev.variants(7) == ev.variants_or_defaults(7)


async def test_the_hot_reads_are_the_current_snapshots_own_functions(
    db_url: str, clock: FakeClock
) -> None:
    """Issue 25 goal 7: no layer between `ev.variants` and the snapshot. After every swap (a
    load, a write, the clock starting a test) the evaluator's reads are the new snapshot's."""
    async with AsyncFlaggery.from_db_url(db_url, clock=clock) as store:
        await seed(store)
        ev = Evaluator.from_db_url(db_url, clock=clock)
        with pytest.raises(RuntimeError, match="not loaded a snapshot"):
            ev.variants(7)
        async with ev:
            for proportion in (0.5, 0.3):
                snapshot = ev.snapshot
                assert ev.variants is snapshot.variants
                assert ev.variant is snapshot.variant
                assert ev.flags_json is snapshot.flags_json
                assert ev.flags_etag is snapshot.flags_etag
                assert ev.evaluate("7").view is snapshot.evaluate("7").view
                await store.set_rollout_proportion("checkout", proportion)
                await ev.wait_for_revision(await store.revision(), timeout=5)
                assert ev.snapshot is not snapshot
            await assert_matches_database(ev, store, clock.now)
