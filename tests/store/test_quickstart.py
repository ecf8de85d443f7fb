"""The seed README's quickstart, run as written through the sync facade on both databases.

Only the database URL changes, and a clock is injected so that the A/B test's 2024 dates
are still in the future when it is created.
"""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta

from flaggery.core import Flaggery
from tests.fakes import FakeClock


def test_seed_quickstart(db_url: str) -> None:
    random.seed(7)
    flaggery = Flaggery.from_db_url(db_url, clock=FakeClock(datetime(2024, 3, 1).astimezone()))
    flaggery.upgrade_db()
    flaggery.increase_buckets(10)
    for _id in range(100):
        flaggery.add_subject(_id, weight=random.randint(1, 10))
    flaggery.add_feature("foobar")
    flaggery.add_variant("A", "foobar")
    flaggery.add_variant("B", "foobar")
    flaggery.add_disabling_variant("foobar", make_default=True)
    flaggery.add_rollout("A", "foobar")
    flaggery.set_rollout_proportion("foobar", proportion=0.1)

    total_weight, weight_of_a = 0, 0
    for subject_id in range(100):
        with flaggery.get_subject(subject_id) as subject:
            total_weight += subject.weight
            if flaggery.get_subject_variants(subject_id)["foobar"] == "A":
                weight_of_a += subject.weight
    assert abs(weight_of_a / total_weight - 0.1) < 0.06  # within a bucket's weight

    flaggery.add_group("friends")
    flaggery.add_subject_to_group(42, "friends")
    flaggery.add_group_override("friends", "foobar", "B")
    assert flaggery.get_subject_variants(42) == {"foobar": "B"}
    assert flaggery.explain(42).features["foobar"].group == "friends"

    flaggery.add_abtest(
        test_name="my_test",
        start=datetime(2024, 4, 1),
        end=datetime(2024, 4, 12),
        groups={
            "control": {"foobar": "__DISABLE__"},
            "experiment": {"foobar": "B"},
        },
        proportions=[0.8, 0.2],
    )
    test = flaggery.get_abtest("my_test")
    assert sorted(b for g in test.groups for b in g.buckets) == list(range(1, 11))
    flaggery.close()


def test_facade_works_from_a_running_loops_thread_pool(db_url: str) -> None:
    def admin_work() -> dict[str, str]:
        with Flaggery.from_db_url(db_url) as flaggery:
            flaggery.increase_buckets(2)
            flaggery.add_subject(1, 1)
            flaggery.add_feature("f")
            flaggery.add_variant("on", "f", make_default=True)
            return flaggery.get_subject_variants(1)

    async def main() -> dict[str, str]:
        return await asyncio.get_running_loop().run_in_executor(None, admin_work)

    assert asyncio.run(main()) == {"f": "on"}


def test_close_is_idempotent(db_url: str) -> None:
    flaggery = Flaggery.from_db_url(db_url)
    assert flaggery.revision() == 0
    flaggery.close()
    flaggery.close()


def test_facade_has_the_lifecycle_calls(db_url: str) -> None:
    clock = FakeClock()
    with Flaggery.from_db_url(db_url, clock=clock) as flaggery:
        flaggery.increase_buckets(4)
        flaggery.add_subjects([(i, 1) for i in range(8)])
        flaggery.add_feature("f")
        flaggery.add_variant("off", "f", make_default=True)
        flaggery.add_variant("on", "f")
        flaggery.add_rollout("off", "f")
        revision = flaggery.revision()
        flaggery.set_rollout("f", "on", 1.0)
        assert flaggery.revision() == revision + 1
        assert flaggery.explain(0).features["f"].source == "rollout"
        flaggery.rm_rollout("f")
        groups = {"a": {"f": "off"}, "b": {"f": "on"}}
        flaggery.add_abtest("t", None, clock.now + timedelta(days=1), groups)
        clock.advance(hours=1)
        flaggery.stop_abtest("t")
        flaggery.rm_abtest("t")
        flaggery.rm_feature("f")
        assert flaggery.list_features() == []
