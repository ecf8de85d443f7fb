"""ExposureHook through the published OpenFeature SDK and FlaggeryProvider: an evaluation an
A/B test decided records (key, test, group), the group the allocation assigned; others none."""

from __future__ import annotations

from datetime import timedelta

from openfeature import api
from openfeature.evaluation_context import EvaluationContext

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
