"""History (issue 11, items 1 and 2): every write records its actor, and `changes` reads the
change log as an audit trail, oldest first, filtered and paginated, saying when retention
pruned what was asked for. SQLite and PostgreSQL."""

from __future__ import annotations

import getpass
from datetime import UTC
from typing import Any

import pytest

from flaggery.core import Flaggery
from flaggery.engine.model import FeatureFact
from flaggery.errors import ValidationError
from flaggery.store.actor import acting_as
from flaggery.store.audit_trail import read_change_range
from flaggery.store.repository import AsyncFlaggery
from flaggery.store.retention import Retention, prune_change_log
from tests.fakes import FakeClock


async def _seed(store: AsyncFlaggery) -> None:
    await store.increase_buckets(2)  # 1
    await store.add_subject(1)  # 2
    await store.add_subject(2)  # 3
    await store.add_feature("f")  # 4
    await store.add_variant("A", "f", make_default=True)  # 5
    await store.add_group("g")  # 6
    await store.add_subject_to_group(2, "g")  # 7
    await store.add_feature("other")  # 8
    await store.add_variant("X", "other")  # 9
    await store.add_group_override("g", "f", "A")  # 10


async def test_every_write_records_its_actor(db_url: str, clock: FakeClock) -> None:
    async with AsyncFlaggery.from_db_url(db_url, clock=clock, actor="deploy-bot") as store:
        await store.add_feature("f")
        with acting_as("alice"):
            await store.add_feature("g")
        page = await store.changes()
    async with AsyncFlaggery.from_db_url(db_url, clock=clock) as store:
        await store.add_feature("h")
        last = (await store.changes(after=2)).changes
    assert [(c.revision, c.actor, c.operation) for c in page.changes] == [
        (1, "deploy-bot", "add_feature"),
        (2, "alice", "add_feature"),
    ]
    assert page.changes[0].at == clock.now and page.changes[0].at.tzinfo == UTC
    (fact,) = page.changes[0].facts
    assert isinstance(fact, FeatureFact) and fact.name == "f"
    assert [c.actor for c in last] == [getpass.getuser()]


def test_the_sync_facade_records_its_actor_and_reads_history(db_url: str) -> None:
    with Flaggery.from_db_url(db_url, actor="script") as flaggery:
        flaggery.add_feature("f")
        page = flaggery.changes(limit=10)
    assert [(c.actor, c.operation) for c in page.changes] == [("script", "add_feature")]


async def test_pages_continue_from_next_after(store: AsyncFlaggery) -> None:
    await _seed(store)
    first = await store.changes(limit=4)
    assert [c.revision for c in first.changes] == [1, 2, 3, 4]
    assert (first.next_after, first.head, first.oldest_retained, first.gone) == (4, 10, 1, False)
    rest = await store.changes(after=first.next_after, limit=100)
    assert [c.revision for c in rest.changes] == [5, 6, 7, 8, 9, 10]
    assert rest.next_after == 10
    assert (await store.changes(after=10)).changes == []


@pytest.mark.parametrize(
    ("filters", "revisions"),
    [
        ({"feature": "f"}, [4, 5, 10]),
        ({"feature": "other"}, [8, 9]),
        ({"group": "g"}, [6, 7, 10]),
        ({"subject": 2}, [3, 7]),
        ({"subject": 3}, []),
        ({"test": "nope"}, []),
        # Filters of different kinds narrow together: the writes touching both names.
        ({"feature": "f", "group": "g"}, [10]),
        ({"group": "g", "subject": 2}, [7]),
        ({"feature": "other", "group": "g"}, []),
        ({"feature": "f", "subject": 2}, []),
    ],
)
async def test_filters_keep_the_writes_that_touch_a_name(
    store: AsyncFlaggery, filters: dict[str, str | int], revisions: list[int]
) -> None:
    await _seed(store)
    page = await store.changes(**filters)  # type: ignore[arg-type]
    assert [c.revision for c in page.changes] == revisions
    assert page.next_after == 10


async def test_a_filtered_page_stops_at_its_limit(store: AsyncFlaggery) -> None:
    await _seed(store)
    page = await store.changes(limit=1, group="g")
    assert [c.revision for c in page.changes] == [6]
    assert page.next_after == 6


async def test_pruned_history_says_it_is_gone(store: AsyncFlaggery) -> None:
    await _seed(store)
    assert await prune_change_log(store.database, Retention(revisions=3, days=0)) == 7
    page = await store.changes(after=2)
    assert page.gone and page.oldest_retained == 8
    assert [c.revision for c in page.changes] == [8, 9, 10]
    assert not (await store.changes(after=7)).gone


@pytest.mark.parametrize(
    ("after", "limit", "message"),
    [
        (-1, 10, "after must be a revision, an integer from 0 to 9223372036854775807"),
        # Beyond what the database stores: OverflowError (SQLite) or DataError (PostgreSQL).
        (2**63, 10, "after must be a revision"),
        (10**20, 10, "after must be a revision"),
        (True, 10, "after must be a revision"),
        (1.5, 10, "after must be a revision"),
        (0, 0, "limit must be an integer from 1 to 1000"),
        (0, 1001, "limit must be an integer from 1 to 1000"),
        (0, 2**64, "limit must be an integer from 1 to 1000"),
        (0, "5", "limit must be an integer from 1 to 1000"),
    ],
)
async def test_bad_pages_are_refused(
    store: AsyncFlaggery, after: Any, limit: Any, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        await store.changes(after=after, limit=limit)


async def test_the_last_revision_that_fits_is_a_page_after_everything(
    store: AsyncFlaggery,
) -> None:
    await _seed(store)
    page = await store.changes(after=2**63 - 1)
    assert page.changes == [] and not page.gone


@pytest.mark.parametrize("subject", [2**63, -(2**63) - 1, 10**20])
async def test_a_subject_filter_beyond_64_bits_is_refused(
    store: AsyncFlaggery, subject: int
) -> None:
    with pytest.raises(ValidationError, match="does not fit in a signed 64-bit integer"):
        await store.changes(subject=subject)


async def test_the_stream_replays_a_contiguous_range_or_nothing(store: AsyncFlaggery) -> None:
    await _seed(store)
    replayed = await read_change_range(store.database, 7, 10)
    assert replayed is not None and [c.revision for c in replayed] == [8, 9, 10]
    assert await read_change_range(store.database, 10, 10) == []
    await prune_change_log(store.database, Retention(revisions=3, days=0))
    assert await read_change_range(store.database, 6, 10) is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"days": 10**12}, "days must be a number from 0 to 36500"),
        ({"days": float("inf")}, "days must be a number from 0 to 36500"),
        ({"days": -1}, "days must be a number from 0 to 36500"),
        ({"revisions": 2**63}, "revisions must be an integer from 0 to 1000000000000"),
        ({"revisions": -1}, "revisions must be an integer from 0 to 1000000000000"),
    ],
)
def test_retention_out_of_range_is_refused(options: dict[str, float], message: str) -> None:
    """The settings' bounds hold for the Python API too: timedelta(days=10**12) raises
    OverflowError and 2**63 revisions is past what PostgreSQL's BIGINT compares with."""
    with pytest.raises(ValidationError, match=message):
        Retention(**options)  # type: ignore[arg-type]
