"""Admin operations on A/B tests: time-bound partitions of the buckets into test groups."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from flaggery.engine.allocation import partition_buckets
from flaggery.engine.dealing import Deal
from flaggery.engine.model import AbTest, AbTestFact
from flaggery.errors import (
    AbTestExists,
    AbTestIsLive,
    AbTestNotFound,
    AbTestNotLive,
    ValidationError,
)
from flaggery.store import tables as t
from flaggery.store.before_state import keep_before
from flaggery.store.conditions import require_unchanged
from flaggery.store.database import Database
from flaggery.store.exposures import forget_exposures
from flaggery.store.features import check_variant
from flaggery.store.queries import (
    read_abtests,
    read_bucket_weights,
    read_features,
    require_group,
)
from flaggery.store.records import AbTestGroupRecord, AbTestRecord, shares
from flaggery.store.validation import check_name, to_utc

__all__ = ["AbTestsAdmin"]

MAX_TEST_GROUPS = 100
MAX_TEST_FEATURES = 100
PROPORTION_TOLERANCE = 1e-9
LAST_TICK = timedelta(microseconds=1)
START_NOW_TOLERANCE = timedelta(minutes=5)
"""A start this far in the past at most means "now": the caller's clock and the request's
travel may lag the server a little, but an older start would claim exposure that never was."""


class AbTestsAdmin:
    _db: Database

    async def add_abtest(  # noqa: PLR0913 - 0.2.1's arguments, then keyword-only options
        self,
        test_name: str,
        start: datetime | None,
        end: datetime,
        groups: Mapping[str, Mapping[str, str]],
        proportions: Sequence[float] | None = None,
        audience: str | None = None,
    ) -> None:
        """Create an A/B test, live from its start to ``end`` inclusive.

        ``audience``: a group; the test's variants then go only to its members (explicit or
        by rule) in the test's buckets, and everyone else resolves as if there were no test.
        None or ``""``: no audience (every unit in its buckets), as a rollout's ``""``.

        ``groups`` maps each test group's name to {feature: variant} (2 or more groups, each
        setting the same 1-100 features); ``proportions`` (each 0 to 1, summing to 1) default to
        equal shares of the weight, in the order of ``groups``. Every bucket goes to one group
        (docs/semantics.md, "Allocation"). Aware datetimes keep their instant; naive ones are
        local time, as in 0.2.1; both are stored as UTC. ``start`` None, or at most
        START_NOW_TOLERANCE (5 minutes) in the past, starts the test at the moment of the write.

        ``start`` None, or at most START_NOW_TOLERANCE (5 minutes) in the past, starts the test
        at the moment of the write; an earlier start raises ValidationError.

        Raises AbTestExists, FeatureNotFound, VariantNotFound, GroupNotFound (the audience),
        ValidationError (start not before
        end, start earlier than the tolerance allows, bad groups or proportions, or an overlap in
        time with a test of the same features). One transaction.
        """
        check_name("A/B test", test_name)
        given_start = None if start is None else to_utc(start, "start")
        end = to_utc(end, "end")
        shares = _check_groups(groups, proportions)
        audience = audience or None  # "": no audience, on every entry point (docs/targeting.md)
        async with self._db.write("add_abtest") as tx:
            await keep_before(tx, "abtest", test_name)
            start = _effective_start(given_start, tx.now)
            if start >= end:
                raise ValidationError(f"start ({start}) must be before end ({end}).")
            if (await read_abtests(tx.conn, test_name)).get(test_name):
                raise AbTestExists(f"A/B test {test_name!r} exists already.")
            known = await read_features(tx.conn)  # once: up to 100 x 100 pairs to check
            for variants in groups.values():
                for feature, variant in variants.items():
                    check_variant(known, feature, variant)
            features = set(next(iter(groups.values())))
            await _refuse_overlap(tx.conn, test_name, start, end, features)
            weights = await read_bucket_weights(tx.conn)
            partition = partition_buckets(weights, shares, test_name)
            if audience is not None:
                await require_group(tx.conn, audience)
            await _insert_test(tx.conn, test_name, start, end, groups, shares, partition)
            if audience is not None:
                await _update_audience(tx.conn, test_name, audience)
            tx.record(AbTestFact(test_name, (await read_abtests(tx.conn, test_name))[test_name]))

    async def stop_abtest(self, test_name: str, *, if_revision: int | None = None) -> None:
        """End a live test now. Its groups keep their buckets, so who was in which group stays
        readable with get_abtest(). AbTestNotLive if it has not started or has ended;
        EntityChanged if ``if_revision`` is given and a write after it changed the test."""
        async with self._db.write("stop_abtest") as tx:
            await keep_before(tx, "abtest", test_name)
            test = await _require_test(tx.conn, test_name)
            await require_unchanged(tx, if_revision, "test", test_name)
            if not _running(test, tx.now):
                raise AbTestNotLive(
                    f"A/B test {test_name!r} is not running ({test.start} to {test.end}): "
                    "only a running test can be stopped; delete it with rm_abtest()."
                )
            # Liveness includes `end`; ending one tick before the write's time makes the
            # snapshot resolved at that time already serve without the test.
            end = max(test.start, tx.now - LAST_TICK)
            await tx.conn.execute(
                update(t.abtests).where(t.abtests.c.name == test_name).values(end=end)
            )
            tx.record(AbTestFact(test_name, await _require_test(tx.conn, test_name)))

    async def rm_abtest(self, test_name: str, *, if_revision: int | None = None) -> None:
        """Delete a test that has ended or not started yet, with its exposure counts;
        AbTestIsLive while it runs; EntityChanged if ``if_revision`` is given and a write
        after it changed the test."""
        async with self._db.write("rm_abtest") as tx:
            await keep_before(tx, "abtest", test_name)
            test = await _require_test(tx.conn, test_name)
            await require_unchanged(tx, if_revision, "test", test_name)
            if _running(test, tx.now):
                raise AbTestIsLive(
                    f"A/B test {test_name!r} is running until {test.end}: "
                    "stop it first with stop_abtest()."
                )
            for table in (t.abtest_group_buckets, t.abtest_group_variants, t.abtest_groups):
                await tx.conn.execute(delete(table).where(table.c.test == test_name))
            await tx.conn.execute(delete(t.abtests).where(t.abtests.c.name == test_name))
            await forget_exposures(tx.conn, test_name)
            features = {feature for group in test.groups for feature in group.variants}
            tx.record(AbTestFact(test_name, None, tuple(sorted(features))))

    async def get_abtest(self, test_name: str) -> AbTestRecord:
        """The test: name, start and end (aware, UTC) and its groups with their proportion,
        variants, bucket ids, effective weight and shares of registered weight and of hashed
        targeting keys.

        Raises AbTestNotFound.
        """
        async with self._db.read() as conn:
            test = await _require_test(conn, test_name)
            weights = await read_bucket_weights(conn)
        groups = [
            AbTestGroupRecord(
                group.name,
                group.proportion,
                dict(group.variants),
                sorted(group.buckets),
                *shares(group.buckets, weights),
            )
            for group in test.groups
        ]
        return AbTestRecord(test.name, test.start, test.end, groups, test.audience, test.auto_stop)

    async def set_abtest_audience(
        self, test_name: str, group_name: str | None, *, if_revision: int | None = None
    ) -> None:
        """Give the test an audience (a group), or none (None or ``""``), running or not.
        Raises AbTestNotFound, GroupNotFound, EntityChanged. One transaction; nothing is
        written when it is the audience already."""
        group_name = group_name or None
        async with self._db.write("set_abtest_audience") as tx:
            await keep_before(tx, "abtest", test_name)
            test = await _require_test(tx.conn, test_name)
            await require_unchanged(tx, if_revision, "test", test_name)
            if test.audience == group_name:
                return
            if group_name is not None:
                await require_group(tx.conn, group_name)
            await _update_audience(tx.conn, test_name, group_name)
            tx.record(AbTestFact(test_name, (await read_abtests(tx.conn, test_name))[test_name]))

    async def set_abtest_auto_stop(
        self, test_name: str, enabled: bool, *, if_revision: int | None = None
    ) -> None:
        """Let the test stop itself when its health turns red (docs/experiments.md), or not.
        Raises AbTestNotFound, EntityChanged. Nothing is written when it is so already."""
        async with self._db.write("set_abtest_auto_stop") as tx:
            test = await _require_test(tx.conn, test_name)
            await require_unchanged(tx, if_revision, "test", test_name)
            if test.auto_stop == enabled:
                return
            await tx.conn.execute(
                update(t.abtests).where(t.abtests.c.name == test_name).values(auto_stop=enabled)
            )
            tx.record(AbTestFact(test_name, (await read_abtests(tx.conn, test_name))[test_name]))

    async def list_abtests(self) -> list[str]:
        """Every A/B test name, sorted."""
        async with self._db.read() as conn:
            return list((await conn.execute(select(t.abtests.c.name).order_by("name"))).scalars())


async def _update_audience(conn: AsyncConnection, test_name: str, audience: str | None) -> None:
    await conn.execute(
        update(t.abtests).where(t.abtests.c.name == test_name).values(audience=audience)
    )


async def _require_test(conn: AsyncConnection, test_name: str) -> AbTest:
    """The test named `test_name`; AbTestNotFound if there is none."""
    test = (await read_abtests(conn, test_name)).get(test_name)
    if test is None:
        raise AbTestNotFound(f"A/B test {test_name!r} does not exist.")
    return test


def _running(test: AbTest, now: datetime) -> bool:
    """Started and not ending at this very instant (so a stopped test is never running)."""
    return test.start <= now < test.end


def _effective_start(start: datetime | None, now: datetime) -> datetime:
    if start is None or now - START_NOW_TOLERANCE <= start <= now:
        return now
    if start < now:
        raise ValidationError(
            f"start ({start}) is more than {START_NOW_TOLERANCE} in the past: omit it, or give "
            "a moment at most that recent, to start the test now."
        )
    return start


def _check_groups(
    groups: Mapping[str, Mapping[str, str]], proportions: Sequence[float] | None
) -> list[float]:
    if not isinstance(groups, Mapping) or not 2 <= len(groups) <= MAX_TEST_GROUPS:
        raise ValidationError(f"An A/B test needs 2 to {MAX_TEST_GROUPS} groups.")
    for name in groups:
        check_name("test group", name)
    feature_sets = {frozenset(variants) for variants in groups.values()}
    if len(feature_sets) != 1:
        raise ValidationError("Every test group must set the same features.")
    features = next(iter(feature_sets))
    if not 1 <= len(features) <= MAX_TEST_FEATURES:
        raise ValidationError(f"A test must set 1 to {MAX_TEST_FEATURES} features.")
    if proportions is None:
        return [1 / len(groups)] * len(groups)
    shares = list(proportions)
    if len(shares) != len(groups):
        raise ValidationError(
            f"{len(groups)} groups need {len(groups)} proportions, got {len(shares)}."
        )
    if any(
        isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 1 for p in shares
    ) or not math.isclose(sum(shares), 1.0, abs_tol=PROPORTION_TOLERANCE):
        raise ValidationError(
            f"Proportions must be numbers from 0 to 1 summing to 1, got {shares}."
        )
    return [float(p) for p in shares]


async def _refuse_overlap(
    conn: AsyncConnection, name: str, start: datetime, end: datetime, features: set[str]
) -> None:
    for other in (await read_abtests(conn)).values():
        shared = features & set(other.groups[0].variants)
        if shared and other.start <= end and start <= other.end:
            raise ValidationError(
                f"A/B test {name!r} overlaps test {other.name!r} ({other.start} to {other.end}) "
                f"on features {sorted(shared)}: concurrent tests of a feature are forbidden."
            )


async def _insert_test(  # noqa: PLR0913 - the rows of one new A/B test
    conn: AsyncConnection,
    name: str,
    start: datetime,
    end: datetime,
    groups: Mapping[str, Mapping[str, str]],
    shares: Sequence[float],
    partition: Deal,
) -> None:
    await conn.execute(insert(t.abtests).values(name=name, start=start, end=end))
    group_rows, variant_rows, bucket_rows = [], [], []
    members, carries = partition
    for position, (group, share, buckets, carry) in enumerate(
        zip(groups, shares, members, carries, strict=True)
    ):
        group_rows.append(
            {"test": name, "name": group, "position": position, "proportion": share, "carry": carry}
        )
        variant_rows += [
            {"test": name, "group": group, "feature": f, "variant": v}
            for f, v in groups[group].items()
        ]
        bucket_rows += [{"test": name, "group": group, "bucket_id": b} for b in sorted(buckets)]
    await conn.execute(insert(t.abtest_groups), group_rows)
    await conn.execute(insert(t.abtest_group_variants), variant_rows)
    if bucket_rows:
        await conn.execute(insert(t.abtest_group_buckets), bucket_rows)
