"""Writes hold the revision lock, so their statement count must not grow with the rows they
touch (issue 8, item 12): the same write at two sizes runs the same number of statements."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import event

from flaggery.store.repository import AsyncFlaggery
from tests.dbcheck import check_invariants
from tests.fakes import FakeClock


@contextmanager
def counting(store: AsyncFlaggery) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engine = store.database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def _statements(store: AsyncFlaggery, write: Callable[[], Awaitable[object]]) -> int:
    with counting(store) as statements:
        await write()
    return len(statements)


async def test_rm_group_is_set_based(store: AsyncFlaggery) -> None:
    await store.increase_buckets(4)
    await store.add_subjects([(i, 1) for i in range(300)])
    for name, size in (("small", 3), ("large", 300)):
        await store.add_group(name)
        for subject_id in range(size):
            await store.add_subject_to_group(subject_id, name)
    await store.add_group("other")
    await store.add_subject_to_group(7, "other")
    small = await _statements(store, lambda: store.rm_group("small"))
    large = await _statements(store, lambda: store.rm_group("large"))
    assert large == small
    assert (await store.get_subject(7)).groups == ["other"]
    assert (await store.get_subject(200)).groups == []
    async with store.database.read() as conn:
        await check_invariants(conn)


async def test_bucket_and_test_writes_are_set_based(store: AsyncFlaggery, clock: FakeClock) -> None:
    await store.increase_buckets(2)
    await store.add_feature("f")
    await store.add_variant("A", "f")
    await store.add_variant("B", "f")
    await store.add_rollout("A", "f")
    await store.set_rollout_proportion("f", 0.5)
    for number in range(1, 4):
        await store.add_feature(f"g{number}")
        await store.add_variant("A", f"g{number}")
        await store.add_rollout("A", f"g{number}")
        await store.set_rollout_proportion(f"g{number}", 0.5)
    start = clock.now + timedelta(days=1)
    await store.add_abtest(
        "t1", start, start + timedelta(days=1), {"a": {"f": "A"}, "b": {"f": "B"}}
    )
    few = await _statements(store, lambda: store.increase_buckets(2))
    many = await _statements(store, lambda: store.increase_buckets(50))
    assert many == few
    few = await _statements(store, lambda: store.add_subjects([(i, 1) for i in range(2)]))
    many = await _statements(store, lambda: store.add_subjects([(i, 1) for i in range(10, 500)]))
    assert many == few
    features = {f"g{number}": "A" for number in range(1, 4)}
    later = start + timedelta(days=2)
    wide = await _statements(
        store,
        lambda: store.add_abtest(
            "t2", later, later + timedelta(days=1), {"a": features, "b": features}
        ),
    )
    narrow = await _statements(
        store,
        lambda: store.add_abtest(
            "t3",
            later + timedelta(days=2),
            later + timedelta(days=3),
            {"a": {"f": "A"}, "b": {"f": "B"}},
        ),
    )
    assert wide == narrow
    async with store.database.read() as conn:
        await check_invariants(conn)
