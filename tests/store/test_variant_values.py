"""Typed variant values: set when adding, changed later, one change-logged transaction each,
in the snapshot and in get_feature; bad values refused with nothing written."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from flaggery import errors
from flaggery.core import Flaggery
from flaggery.engine.model import FeatureFact, decode_facts
from flaggery.store import tables as t
from flaggery.store.repository import AsyncFlaggery
from flaggery.store.validation import MAX_VALUE_DEPTH


async def _last_change(store: AsyncFlaggery) -> tuple[str, Any]:
    async with store.database.read() as conn:
        row = (
            await conn.execute(select(t.change_log).order_by(t.change_log.c.revision.desc()))
        ).first()
    assert row is not None
    return row.operation, decode_facts(row.payload)


async def test_values_are_set_changed_and_logged(store: AsyncFlaggery) -> None:
    await store.add_feature("checkout")
    await store.add_variant("on", "checkout", value=True)
    await store.add_variant("price", "checkout", value=9.5)
    await store.add_variant("limits", "checkout", value={"max": 3, "tags": ["a"]})
    await store.add_variant("plain", "checkout", make_default=True)
    feature = await store.get_feature("checkout")
    assert feature.values == {"on": True, "price": 9.5, "limits": {"max": 3, "tags": ["a"]}}
    assert feature.default_variant == "plain"

    revision = await store.revision()
    await store.set_variant_value("on", "checkout", 1)  # 1 is not True: a real change
    assert await store.revision() == revision + 1
    operation, facts = await _last_change(store)
    assert operation == "set_variant_value"
    assert isinstance(facts[0], FeatureFact) and facts[0].feature is not None
    assert facts[0].feature.values["on"] == 1 and facts[0].feature.values["on"] is not True

    await store.set_variant_value("on", "checkout", 1)  # the same value: nothing written
    assert await store.revision() == revision + 1
    await store.set_variant_value("on", "checkout", None)  # back to its name
    assert "on" not in (await store.get_feature("checkout")).values


@pytest.mark.parametrize(
    "value",
    [[1, 2], float("nan"), float("inf"), 2**64, {"big": "x" * 70_000}, object()],
    ids=["list", "nan", "inf", "huge-int", "huge-object", "object"],
)
async def test_bad_values_are_refused_and_nothing_is_written(
    store: AsyncFlaggery, value: object
) -> None:
    await store.add_feature("f")
    await store.add_variant("a", "f")
    revision = await store.revision()
    with pytest.raises(errors.ValidationError, match="value"):
        await store.add_variant("b", "f", value=value)  # type: ignore[arg-type]
    with pytest.raises(errors.ValidationError, match="value"):
        await store.set_variant_value("a", "f", value)  # type: ignore[arg-type]
    assert await store.revision() == revision
    assert (await store.get_feature("f")).variants == ["a"]


def _nested(depth: int) -> dict[str, Any]:
    """An object value ``depth`` objects deep (the value itself is depth 1)."""
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def _cycle() -> dict[str, Any]:
    value: dict[str, Any] = {}
    value["self"] = value
    return value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("x" * (64 * 1024 - 1), "at most 65536 bytes as JSON, got 65537"),  # quotes count
        ("x" * 30_000_000, "at most 65536 bytes as JSON"),
        ("\u00e9" * 40_000, "at most 65536 bytes as JSON"),  # 80,000 bytes as UTF-8
        ({"big": "x" * 70_000}, "at most 65536 bytes as JSON"),
        (_nested(MAX_VALUE_DEPTH + 1), f"at most {MAX_VALUE_DEPTH} deep"),
        (_nested(600), f"at most {MAX_VALUE_DEPTH} deep"),
        (_nested(5_000), f"at most {MAX_VALUE_DEPTH} deep"),  # deeper than the stack allows
        ({"a": [[[[1]]]], "deep": _nested(MAX_VALUE_DEPTH)}, f"at most {MAX_VALUE_DEPTH}"),
        (_cycle(), f"at most {MAX_VALUE_DEPTH} deep"),
    ],
    ids=["string-at-bound", "string-30M", "utf8", "object", "33", "600", "5000", "lists", "cycle"],
)
async def test_values_beyond_the_bounds_are_refused(
    store: AsyncFlaggery, value: object, message: str
) -> None:
    await store.add_feature("f")
    await store.add_variant("a", "f")
    revision = await store.revision()
    with pytest.raises(errors.ValidationError, match=message):
        await store.add_variant("b", "f", value=value)  # type: ignore[arg-type]
    with pytest.raises(errors.ValidationError, match=message):
        await store.set_variant_value("a", "f", value)  # type: ignore[arg-type]
    assert await store.revision() == revision


async def test_values_at_the_bounds_are_accepted(store: AsyncFlaggery) -> None:
    await store.add_feature("f")
    longest = "x" * (64 * 1024 - 2)  # with its quotes, exactly 64 KiB as JSON
    await store.add_variant("long", "f", value=longest)
    await store.add_variant("deep", "f", value=_nested(MAX_VALUE_DEPTH))
    values = (await store.get_feature("f")).values
    assert values["long"] == longest and values["deep"] == _nested(MAX_VALUE_DEPTH)


async def test_value_errors_name_what_is_missing(store: AsyncFlaggery) -> None:
    await store.add_feature("f")
    await store.add_disabling_variant("f")
    with pytest.raises(errors.VariantNotFound, match="Variants: '__DISABLE__'"):
        await store.set_variant_value("x", "f", 1)
    with pytest.raises(errors.FeatureNotFound):
        await store.set_variant_value("x", "nope", 1)
    with pytest.raises(errors.ValidationError, match="no value"):
        await store.set_variant_value("__DISABLE__", "f", 1)


def test_sync_facade_sets_values(db_url: str) -> None:
    with Flaggery.from_db_url(db_url) as flaggery:
        flaggery.add_feature("f")
        flaggery.add_variant("a", "f", value="alpha")
        flaggery.set_variant_value("a", "f", {"k": 1})
        assert flaggery.get_feature("f").values == {"a": {"k": 1}}
