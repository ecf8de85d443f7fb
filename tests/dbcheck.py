"""Independent checks straight from the database rows, shared by store, live and http tests.

Nothing here uses the engine or the loader: ``naive_variants`` re-implements the resolution
order of docs/semantics.md over plain SELECTs, so comparing it with a snapshot tests the whole
path (store -> change log / loader -> engine).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


async def _rows(conn: AsyncConnection, sql: str) -> list[tuple]:  # type: ignore[type-arg]
    return [tuple(row) for row in await conn.execute(text(sql))]


def _aware(moment: datetime | str) -> datetime:
    if isinstance(moment, str):  # SQLite hands timestamps back as text
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def naive_variants_all(conn: AsyncConnection, now: datetime) -> dict[int, dict[str, str]]:
    """{subject id: {feature: variant}} for every subject, resolved the slow, obvious way."""
    subjects = await _rows(conn, "SELECT id, bucket_id FROM subjects")
    defaults = await _rows(conn, "SELECT name, default_variant FROM features")
    rollouts = await _rows(
        conn,
        "SELECT r.feature, r.variant, rb.bucket_id, r.audience FROM rollouts r "
        "JOIN rollout_buckets rb ON rb.feature = r.feature",
    )
    tests = await _rows(
        conn,
        'SELECT t.start, t."end", b.bucket_id, v.feature, v.variant, t.audience FROM abtests t '
        "JOIN abtest_group_buckets b ON b.test = t.name "
        'JOIN abtest_group_variants v ON v.test = t.name AND v."group" = b."group"',
    )
    memberships = await _rows(
        conn, 'SELECT subject_id, "group", joined FROM group_members ORDER BY joined, "group"'
    )
    overrides = await _rows(conn, 'SELECT "group", feature, variant FROM group_overrides')

    group_overrides: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for group, feature, variant in overrides:
        group_overrides[group].append((feature, variant))
    groups_of: dict[int, list[str]] = defaultdict(list)
    for subject_id, group, _ in memberships:
        groups_of[subject_id].append(group)

    result = {}
    for subject_id, bucket in subjects:
        flags = {feature: default for feature, default in defaults if default is not None}
        # A rollout or test with an audience serves only that group's members.
        serves = {None, *groups_of[subject_id]}
        flags |= {f: v for f, v, b, audience in rollouts if b == bucket and audience in serves}
        for start, end, b, feature, variant, audience in tests:
            if b == bucket and _aware(start) <= now <= _aware(end) and audience in serves:
                flags[feature] = variant
        for group in groups_of[subject_id]:
            flags |= dict(group_overrides[group])
        result[subject_id] = flags
    return result


async def check_invariants(conn: AsyncConnection, now: datetime | None = None) -> None:
    """Assert the structural invariants of the stored state. Given `now`, also that every test
    that has not ended holds every bucket (an ended one keeps the buckets it ended with)."""
    for bucket, weight, total in await _rows(
        conn,
        "SELECT b.id, b.weight, COALESCE(SUM(s.weight), 0) FROM buckets b "
        "LEFT JOIN subjects s ON s.bucket_id = b.id GROUP BY b.id, b.weight",
    ):
        assert weight == total, f"bucket {bucket} stores weight {weight}, its subjects sum {total}"

    bucket_ids = {b for (b,) in await _rows(conn, "SELECT id FROM buckets")}
    placed = await _rows(conn, "SELECT id, bucket_id FROM subjects")
    assert all(bucket in bucket_ids for _, bucket in placed), "every subject in a known bucket"

    rollout_buckets: dict[str, set[int]] = defaultdict(set)
    for feature, bucket in await _rows(conn, "SELECT feature, bucket_id FROM rollout_buckets"):
        rollout_buckets[feature].add(bucket)
    for feature, proportion in await _rows(conn, "SELECT feature, proportion FROM rollouts"):
        held = rollout_buckets[feature]
        assert held <= bucket_ids, f"rollout {feature} holds unknown buckets"
        if proportion == 0:
            assert not held, f"rollout {feature} at 0 holds buckets {held}"
        if proportion == 1:
            assert held == bucket_ids, f"rollout {feature} at 1 misses {bucket_ids - held}"
    for test, end, covered, distinct in await _rows(
        conn,
        'SELECT t.name, t."end", COUNT(b.bucket_id), COUNT(DISTINCT b.bucket_id) FROM abtests t '
        'LEFT JOIN abtest_group_buckets b ON b.test = t.name GROUP BY t.name, t."end"',
    ):
        assert covered == distinct, f"test {test} holds a bucket in two groups"
        if now is not None and _aware(end) > now:
            assert covered == len(bucket_ids), f"test {test} does not partition the buckets"

    (revision,) = (await _rows(conn, "SELECT revision FROM flaggery_state"))[0]
    revisions = [r for (r,) in await _rows(conn, "SELECT revision FROM change_log ORDER BY 1")]
    assert revisions == list(range(1, revision + 1)), "one change-log row per revision"
