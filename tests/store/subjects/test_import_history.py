"""An import batch (a bulk add logged as one SubjectsFact) is indexed for History by one
id-span row, not a row per subject, and a subject filter still finds exactly the writes that
touch the subject: the batch for its own subjects, not for ids its span skips. SQLite and
PostgreSQL."""

from __future__ import annotations

from sqlalchemy import func, select

from flaggery.store import database
from flaggery.store import tables as t
from flaggery.store.change_index import SUBJECT_SPAN, span_name
from flaggery.store.repository import AsyncFlaggery

# Two runs of ids around a gap: more than MAX_LOGGED_FACTS, so logged as one SubjectsFact.
LOW = list(range(-3, 6_000))
HIGH = list(range(20_000, 20_000 + database.MAX_LOGGED_FACTS - len(LOW) + 2))


async def test_a_batch_is_one_span_row_and_a_subject_filter_is_exact(
    store: AsyncFlaggery,
) -> None:
    await store.increase_buckets(4)
    await store.add_subjects([(i, 1 + i % 3) for i in LOW + HIGH])
    batch = await store.revision()
    await store.add_subject(10_000)  # inside the batch's span, not in the batch
    await store.add_feature("other")
    async with store.database.read() as conn:
        rows = (
            await conn.execute(
                select(t.change_touches.c.kind, t.change_touches.c.name).where(
                    t.change_touches.c.revision == batch
                )
            )
        ).all()
        indexed = (await conn.execute(select(func.count()).select_from(t.change_touches))).scalar()
    assert rows == [(SUBJECT_SPAN, span_name(LOW[0], HIGH[-1]))]
    assert indexed is not None and indexed < 10  # not a row per subject
    for subject in (LOW[0], 0, LOW[-1], HIGH[0], HIGH[-1]):
        page = await store.history(subject=subject)
        assert [c.revision for c in page.changes] == [batch], subject
        assert page.changes[0].operation == "add_subjects"
    gap = await store.history(subject=10_000)
    assert [c.operation for c in gap.changes] == ["add_subject"]
    assert (await store.history(subject=LOW[0] - 1)).changes == []
    assert (await store.history(subject=HIGH[-1] + 1)).changes == []
    assert [c.revision for c in (await store.history(subject=0, limit=1)).changes] == [batch]
    # GET /v1/changes reads the same index forwards: the span's false positive is dropped there
    # too, and paging on next_after still reaches the head.
    for subject, expected in ((0, ["add_subjects"]), (10_000, ["add_subject"])):
        seen, after = [], 0
        while True:
            changes = await store.changes(after, 1, subject=subject)
            seen += [c.operation for c in changes.changes]
            if changes.next_after >= changes.head:
                break
            after = changes.next_after
        assert seen == expected, subject


def test_span_names_sort_as_their_ids() -> None:
    ids = [-(2**63), -1_000_000, -1, 0, 9, 10, 99, 100, 2**63 - 1]
    names = [span_name(i, i) for i in ids]
    assert sorted(names) == names
    assert len({len(name) for name in names}) == 1
