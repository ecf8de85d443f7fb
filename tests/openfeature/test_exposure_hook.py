"""ExposureHook through the published OpenFeature SDK and FlaggeryProvider: an evaluation an
A/B test decided records (key, test, group), the group the allocation assigned; others none.
With `Evaluator.record_exposure` as the hook's recorder, the exposures reach the database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from openfeature import api
from openfeature.evaluation_context import EvaluationContext

from flaggery import errors
from flaggery.live.evaluator import Evaluator
from flaggery.openfeature import ExposureHook, FlaggeryProvider
from flaggery.store.repository import AsyncFlaggery
from tests.fakes import FakeClock


async def test_the_hook_records_what_a_test_decided(
    store: AsyncFlaggery, db_url: str, clock: FakeClock
) -> None:
    await store.increase_buckets(4)
    await store.add_subjects([(i, 1) for i in range(1, 9)])
    for feature in ("f", "plain"):
        await store.add_feature(feature)
        await store.add_variant("A", feature, make_default=True, value="a")
        await store.add_variant("B", feature, value="b")
    groups = {"control": {"f": "A"}, "treatment": {"f": "B"}}
    await store.add_abtest("t", None, clock.now + timedelta(days=7), groups)
    holder = {b: g.name for g in (await store.get_abtest("t")).groups for b in g.buckets}
    recorded: list[tuple[str, str, str]] = []
    async with Evaluator.from_db_url(db_url, clock=clock) as evaluator:
        api.set_provider_and_wait(FlaggeryProvider(evaluator), "exposures")
        client = api.get_client("exposures")
        client.add_hooks([ExposureHook(lambda *exposure: recorded.append(exposure))])
        try:
            for subject in range(1, 9):
                context = EvaluationContext(targeting_key=str(subject))
                client.get_string_value("f", "", context)
                client.get_string_value("plain", "", context)  # no test: nothing recorded
            client.get_string_value("f", "", EvaluationContext())  # no key: nothing
        finally:
            api.clear_providers()
    expected = [(str(s), "t", holder[(await store.get_subject(s)).bucket_id]) for s in range(1, 9)]
    assert recorded == expected


async def test_the_evaluator_records_exposures_in_one_line_and_writes_them_in_batches(
    store: AsyncFlaggery, db_url: str, clock: FakeClock
) -> None:
    await store.increase_buckets(4)
    await store.add_subjects([(i, 1) for i in range(1, 9)])
    await store.add_feature("f")
    await store.add_variant("A", "f", make_default=True, value="a")
    await store.add_variant("B", "f", value="b")
    groups = {"control": {"f": "A"}, "treatment": {"f": "B"}}
    await store.add_abtest("t", None, clock.now + timedelta(days=7), groups)
    holder = {b: g.name for g in (await store.get_abtest("t")).groups for b in g.buckets}
    evaluator = Evaluator.from_db_url(db_url, clock=clock, exposure_interval=3600)
    async with evaluator:
        api.set_provider_and_wait(FlaggeryProvider(evaluator), "evaluator-exposures")
        client = api.get_client("evaluator-exposures")
        client.add_hooks([ExposureHook(evaluator.record_exposure)])
        try:
            for subject in (*range(1, 9), 1):  # subject 1 twice: a repeat
                client.get_string_value("f", "", EvaluationContext(targeting_key=str(subject)))
        finally:
            api.clear_providers()
        with pytest.raises(errors.AbTestNotFound):  # refused at once, not at the next flush
            evaluator.record_exposure("1", "no such test", "control")
        assert not (await store.abtest_health("t")).populations[0].exposures  # not yet written
    health = await store.abtest_health("t")  # the evaluator wrote its tally when it stopped
    subjects = health.populations[0]
    expected = {name: 0 for name in groups}
    for subject in range(1, 9):
        expected[holder[(await store.get_subject(subject)).bucket_id]] += 1
    assert {g.name: g.exposures for g in subjects.groups} == expected
    assert (subjects.exposures, health.repeats, health.misassigned) == (8, 1, 0)


def test_an_evaluator_following_a_server_has_no_database_to_count_exposures_in() -> None:
    evaluator = Evaluator.from_upstream("http://127.0.0.1:9")
    with pytest.raises(errors.NotAdmin, match="record_exposure"):
        evaluator.record_exposure("1", "t", "control")
