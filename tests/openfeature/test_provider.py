"""FlaggeryProvider through the OpenFeature SDK's client, with a hook, on SQLite and
PostgreSQL: the five types sync and async, reasons, errors as the SDK reports them, and the
provider's events."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent
from openfeature.exception import ErrorCode, ProviderNotReadyError
from openfeature.flag_evaluation import FlagEvaluationDetails, Reason
from openfeature.hook import Hook, HookContext, HookHints

from flaggery.engine.model import JsonValue
from flaggery.live.evaluator import Evaluator
from flaggery.openfeature import FlaggeryProvider
from flaggery.store.repository import AsyncFlaggery
from tests.fakes import FakeClock
from tests.live.helpers import eventually

_domains = itertools.count()


class Recorder(Hook):
    """Records what the SDK's hook stages see."""

    def __init__(self) -> None:
        self.resolved: list[FlagEvaluationDetails[Any]] = []
        self.errors: list[Exception] = []

    def after(self, hook_context: HookContext, details: Any, hints: HookHints) -> None:
        self.resolved.append(details)

    def error(self, hook_context: HookContext, exception: Exception, hints: HookHints) -> None:
        self.errors.append(exception)


# feature -> {variant: value}: one feature per JSON type a variant's value can have.
TYPED_VARIANTS: dict[str, dict[str, JsonValue]] = {
    "dark": {"yes": True, "no": False},
    "color": {"blue": "#00f", "red": "#f00"},
    "retries": {"few": 3, "many": 10},
    "ratio": {"low": 0.25, "whole": 1},
    "limits": {"small": {"max": 1}, "big": {"max": 9}},
}


async def seed(store: AsyncFlaggery) -> None:
    await store.increase_buckets(2)
    await store.add_subjects([(1, 1), (2, 1)])
    for feature, values in TYPED_VARIANTS.items():
        await store.add_feature(feature)
        for position, (variant, value) in enumerate(values.items()):
            await store.add_variant(variant, feature, position == 0, value)
    await store.add_feature("legacy")
    await store.add_disabling_variant("legacy", make_default=True)
    await store.add_group("staff")
    await store.add_subject_to_group(2, "staff")
    await store.add_group_override("staff", "retries", "many")


@pytest.fixture
async def flaggery_client(
    store: AsyncFlaggery, db_url: str, clock: FakeClock
) -> AsyncIterator[tuple[OpenFeatureClient, Recorder, AsyncFlaggery]]:
    await seed(store)
    async with Evaluator.from_db_url(db_url, clock=clock) as evaluator:
        domain = f"flaggery-test-{next(_domains)}"
        api.set_provider_and_wait(FlaggeryProvider(evaluator), domain)
        client = api.get_client(domain)
        recorder = Recorder()
        client.add_hooks([recorder])
        yield client, recorder, store
        api.clear_providers()


def ctx(key: str | None) -> EvaluationContext:
    return EvaluationContext(targeting_key=key)


async def test_five_types_sync_and_async(
    flaggery_client: tuple[OpenFeatureClient, Recorder, AsyncFlaggery],
) -> None:
    client, recorder, _ = flaggery_client
    one = ctx("1")
    assert client.get_boolean_value("dark", False, one) is True
    assert client.get_string_value("color", "", one) == "#00f"
    assert client.get_integer_value("retries", 0, one) == 3
    assert client.get_integer_value("retries", 0, ctx("2")) == 10  # the staff override
    assert client.get_float_value("ratio", 0.0, one) == 0.25
    assert client.get_object_value("limits", {}, one) == {"max": 1}
    assert await client.get_boolean_value_async("dark", False, one) is True
    assert await client.get_string_value_async("color", "", one) == "#00f"
    assert await client.get_integer_value_async("retries", 0, ctx("2")) == 10
    assert await client.get_float_value_async("ratio", 0.0, one) == 0.25
    assert await client.get_object_value_async("limits", {}, one) == {"max": 1}
    details = client.get_integer_details("retries", 0, ctx("2"))
    assert (details.reason, details.variant) == (Reason.TARGETING_MATCH, "many")
    assert details.flag_metadata["group"] == "staff"
    assert recorder.resolved[-1].value == 10 and not recorder.errors


async def test_reasons_defaults_and_errors(
    flaggery_client: tuple[OpenFeatureClient, Recorder, AsyncFlaggery],
) -> None:
    client, recorder, store = flaggery_client
    disabled = client.get_boolean_details("legacy", True, ctx("1"))
    assert (disabled.value, disabled.reason, disabled.error_code) == (True, Reason.DISABLED, None)
    visitor = client.get_string_details("color", "x", ctx("alice@example.com"))
    assert (visitor.value, visitor.reason) == ("#00f", Reason.STATIC)  # as its bucket's subjects
    assert visitor.flag_metadata["subjectKnown"] is False
    assert visitor.flag_metadata["keyHashed"] is True
    assert client.get_string_details("color", "x", ctx("1")).reason == Reason.STATIC
    await store.add_rollout("red", "color")
    await store.set_rollout_proportion("color", 1.0)
    errors = {
        ("nope", "1"): ErrorCode.FLAG_NOT_FOUND,
        ("color", None): ErrorCode.TARGETING_KEY_MISSING,
        ("color", "x" * 257): ErrorCode.INVALID_CONTEXT,
    }
    for (flag, key), code in errors.items():
        failed = client.get_string_details(flag, "fallback", ctx(key))
        assert (failed.value, failed.error_code, failed.reason) == ("fallback", code, Reason.ERROR)
    mismatch = client.get_integer_details("color", 7, ctx("1"))
    assert (mismatch.value, mismatch.error_code) == (7, ErrorCode.TYPE_MISMATCH)
    assert client.get_float_value("ratio", 0.0, ctx("2")) == 0.25
    assert client.get_integer_details("ratio", 0, ctx("1")).error_code == ErrorCode.TYPE_MISMATCH
    assert client.get_integer_details("dark", 0, ctx("1")).error_code == ErrorCode.TYPE_MISMATCH
    assert len(recorder.errors) == 6


async def test_any_key_is_bucketed_and_a_named_subject_buckets_it(
    flaggery_client: tuple[OpenFeatureClient, Recorder, AsyncFlaggery],
) -> None:
    client, _, store = flaggery_client
    await store.add_rollout("red", "color")
    await store.set_rollout_proportion("color", 0.5)
    revision = await store.revision()
    await eventually(
        lambda: (
            client.get_string_details("color", "", ctx("1")).flag_metadata["revision"] == revision
        )
    )
    seen = set()
    for n in range(30):
        key = f"device-{n}"
        expected = (await store.evaluate(key)).flags["color"]
        details = client.get_string_details("color", "", ctx(key))
        assert details.variant == expected
        assert details.flag_metadata["bucket"] == (await store.evaluate(key)).view.bucket
        seen.add(expected)
    assert seen == {"blue", "red"}
    # The staff override of subject 2 reaches every visitor that names it as its subject.
    named = EvaluationContext(targeting_key="device-0", attributes={"subject": "2"})
    assert client.get_integer_details("retries", 0, named).variant == "many"
    assert client.get_integer_details("retries", 0, ctx("device-0")).variant == "few"


async def test_configuration_changed_event_names_the_flags(
    flaggery_client: tuple[OpenFeatureClient, Recorder, AsyncFlaggery],
) -> None:
    client, _, store = flaggery_client
    seen: list[EventDetails] = []
    client.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, seen.append)
    await store.set_variant_value("blue", "color", "#0000ff")
    await eventually(lambda: bool(seen))
    assert seen[0].flags_changed == ["color"]
    await eventually(lambda: client.get_string_value("color", "", ctx("1")) == "#0000ff")
    await store.add_group_override("staff", "dark", "no")
    await eventually(lambda: len(seen) == 2)
    assert seen[1].flags_changed == ["dark"]
    await store.add_subject(3, 1)  # a subject changes no flag's configuration
    await asyncio.sleep(0.5)
    assert len(seen) == 2


async def test_answers_stay_right_when_the_key_cache_fills(
    flaggery_client: tuple[OpenFeatureClient, Recorder, AsyncFlaggery],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("flaggery.openfeature.provider.KEY_CACHE_SIZE", 2)
    client, _, _ = flaggery_client
    for _ in range(3):
        for key, retries in (("1", 3), ("2", 10), ("77", 3), ("1", 3), ("2", 10)):
            assert client.get_integer_value("retries", 0, ctx(key)) == retries


async def test_not_ready_before_the_evaluator_loads(tmp_path: Path) -> None:
    evaluator = Evaluator.from_db_url(f"sqlite:///{tmp_path / 'never-started.db'}")
    provider = FlaggeryProvider(evaluator)
    try:
        with pytest.raises(ProviderNotReadyError):
            provider.initialize(EvaluationContext())
        with pytest.raises(ProviderNotReadyError):
            provider.resolve_string_details("color", "", ctx("1"))
    finally:
        provider.shutdown()
        await evaluator.stop()
