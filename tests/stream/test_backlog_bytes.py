"""The stream backlog is bounded in bytes, not only in events (issue 18, item 4b): 100 bulk
adds of 9,000 subjects, the documented way to load subjects, must not stay in every process's
memory, and each event is kept once (its wire form), not twice."""

from __future__ import annotations

import tracemalloc

from flaggery.engine.model import Change, Subject, SubjectFact
from flaggery.stream.broadcast import BACKLOG_BYTES, Broadcast

SUBJECTS_PER_ADD = 9_000
ADDS = 100


def _bulk_add(revision: int) -> Change:
    first = revision * SUBJECTS_PER_ADD
    facts = tuple(
        SubjectFact(first + n, Subject(weight=1, bucket=1 + n % 4)) for n in range(SUBJECTS_PER_ADD)
    )
    return Change(revision, "add_subjects", facts)


def test_a_hundred_bulk_adds_keep_a_bounded_backlog() -> None:
    broadcast = Broadcast()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        sizes = []
        for revision in range(1, ADDS + 1):
            change = _bulk_add(revision)
            broadcast.on_swap(revision, [change], None)
            sizes.append(len(broadcast.backlog[-1].wire))
            del change
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sum(sizes) > 5 * BACKLOG_BYTES  # the events themselves are far larger than the bound
    assert broadcast.backlog_bytes == sum(len(event.wire) for event in broadcast.backlog)
    assert broadcast.backlog_bytes <= BACKLOG_BYTES
    assert broadcast.backlog[-1].revision == ADDS  # the newest is always kept
    assert held - before < 1.5 * BACKLOG_BYTES


def test_the_newest_event_stays_even_when_larger_than_the_bound() -> None:
    broadcast = Broadcast()
    # Larger than the backlog's bound, smaller than an event may be (MAX_EVENT_BYTES).
    huge = Change(1, "add_subjects", tuple(SubjectFact(n, None) for n in range(300_000)))
    broadcast.on_swap(1, [huge], None)
    assert len(broadcast.backlog) == 1 and broadcast.backlog_bytes > BACKLOG_BYTES
    broadcast.on_swap(2, [_bulk_add(2)], None)
    assert [event.revision for event in broadcast.backlog] == [2]
