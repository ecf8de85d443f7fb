"""One name rule for every kind of name, on both databases (check_name), and lookups of names
the database cannot hold answering NotFound on both (storable)."""

from __future__ import annotations

import unicodedata
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest

from flaggery import errors
from flaggery.store.repository import AsyncFlaggery
from flaggery.store.validation import check_name, storable
from tests.fakes import FakeClock

REFUSED = {
    "NUL": "a\x00b",
    "C0 control": "a\x1fb",
    "DEL": "a\x7fb",
    "C1 control (NEL)": "a\x85b",
    "C1 control (CSI)": "a\x9bb",
    "replacement character (invalid UTF-8 in a URL)": "\ufffd\ufffd",
    "dot": ".",
    "dot dot": "..",
    "slash": "a/b",
    "zero-width space": "a\u200bb",
    "zero-width joiner": "a\u200db",
    "byte order mark": "\ufeffab",
    "bidi override": "ab\u202ecd",
    "bidi isolate": "a\u2066b",
    "soft hyphen": "a\u00adb",
    "no-break space": "a\u00a0b",
    "em space": "a\u2003b",
    "line separator": "a\u2028b",
    "private use": "a\ue000b",
    "unassigned": "a\U000e0fffb",
    "lone surrogate": "a\ud800b",
    "NFD e-acute": unicodedata.normalize("NFD", "caf\u00e9"),
    "fullwidth letters": "\uff46\uff45\uff41\uff54",
    "ligature": "\ufb01x",
    "micro sign": "\u00b5s",
    "leading space": " a",
    "trailing tab": "a\t",
    "empty": "",
    "too long": "x" * 201,
}
ACCEPTED = ["checkout", "new-checkout_v2.1", "a b", "caf\u00e9", "日本語", "μs", "...", ".a", "a."]


@pytest.mark.parametrize("name", REFUSED.values(), ids=REFUSED.keys())
def test_the_rule_refuses(name: str) -> None:
    with pytest.raises(errors.ValidationError):
        check_name("feature", name)


@pytest.mark.parametrize("name", ACCEPTED)
def test_the_rule_accepts(name: str) -> None:
    assert check_name("feature", name) == name


def test_the_message_says_what_is_wrong() -> None:
    with pytest.raises(errors.ValidationError, match=r"U\+0085, a control character \(Cc\)"):
        check_name("group", "a\x85b")
    # A control character at an end is one too, not "a space" (strip() takes both).
    with pytest.raises(errors.ValidationError, match=r"U\+000A, a control character \(Cc\)"):
        check_name("group", "g\n")
    with pytest.raises(errors.ValidationError, match=r"U\+00A0, a space other than U\+0020"):
        check_name("group", "g\xa0")
    with pytest.raises(errors.ValidationError, match="starts or ends with a space"):
        check_name("group", " g")
    with pytest.raises(errors.ValidationError, match="write it as 'café'"):
        check_name("group", unicodedata.normalize("NFD", "café"))


def test_storable() -> None:
    assert storable("a\x85b") and storable("..") and storable("\ufffd")
    assert not storable("a\x00b") and not storable("a\ud800b") and not storable(3)


Creator = Callable[[AsyncFlaggery, str], Awaitable[object]]


async def _abtest(store: AsyncFlaggery, clock: FakeClock, test: str, group: str) -> None:
    start = clock() + timedelta(days=1)
    groups = {group: {"f": "A"}, "other": {"f": "B"}}
    await store.add_abtest(test, start, start + timedelta(days=1), groups)


CREATORS: dict[str, Callable[[AsyncFlaggery, FakeClock, str], Awaitable[object]]] = {
    "feature": lambda store, clock, name: store.add_feature(name),
    "variant": lambda store, clock, name: store.add_variant(name, "f"),
    "group": lambda store, clock, name: store.add_group(name),
    "A/B test": lambda store, clock, name: _abtest(store, clock, name, "g"),
    "test group": lambda store, clock, name: _abtest(store, clock, "t", name),
}


async def _seed(store: AsyncFlaggery) -> None:
    await store.increase_buckets(4)
    await store.add_feature("f")
    await store.add_variant("A", "f", make_default=True)
    await store.add_variant("B", "f")


@pytest.mark.parametrize("kind", CREATORS)
async def test_every_kind_of_name_follows_the_rule(
    store: AsyncFlaggery, clock: FakeClock, kind: str
) -> None:
    await _seed(store)
    before = await store.revision()
    for label, name in REFUSED.items():
        with pytest.raises(errors.ValidationError):
            await CREATORS[kind](store, clock, name)
            pytest.fail(f"{kind} named {label} was accepted")
    assert await store.revision() == before
    assert await store.list_features() == ["f"]
    assert await store.list_groups() == [] and await store.list_abtests() == []


UNSTORABLE = ["a\x00b", "\x00", "a\ud800b"]


@pytest.mark.parametrize("name", UNSTORABLE)
async def test_lookups_of_unstorable_names_are_not_found(store: AsyncFlaggery, name: str) -> None:
    """PostgreSQL refused NUL with an error (a 500); SQLite answered not found."""
    await _seed(store)
    await store.add_group("g")
    lookups: list[tuple[type[errors.NotFound], Awaitable[object]]] = [
        (errors.FeatureNotFound, store.get_feature(name)),
        (errors.FeatureNotFound, store.rm_feature(name)),
        (errors.FeatureNotFound, store.add_variant("C", name)),
        (errors.FeatureNotFound, store.add_disabling_variant(name)),
        (errors.VariantNotFound, store.rm_variant(name, "f")),
        (errors.VariantNotFound, store.set_default_feature_variant("f", name)),
        (errors.FeatureNotFound, store.add_rollout("A", name)),
        (errors.VariantNotFound, store.add_rollout(name, "f")),
        (errors.RolloutNotFound, store.get_rollout(name)),
        (errors.RolloutNotFound, store.set_rollout_proportion(name, 0.5)),
        (errors.GroupNotFound, store.get_group(name)),
        (errors.GroupNotFound, store.rm_group(name)),
        (errors.GroupNotFound, store.add_group_override(name, "f", "A")),
        (errors.FeatureNotFound, store.add_group_override("g", name, "A")),
        (errors.GroupNotFound, store.rm_group_override(name, "f")),
        (errors.OverrideNotFound, store.rm_group_override("g", name)),
        (errors.AbTestNotFound, store.get_abtest(name)),
        (errors.AbTestNotFound, store.stop_abtest(name)),
        (errors.AbTestNotFound, store.rm_abtest(name)),
        (errors.RolloutNotFound, store.rm_rollout(name)),
        (errors.RolloutNotFound, store.set_rollout(name, proportion=0.5)),
    ]
    before = await store.revision()
    for expected, call in lookups:
        with pytest.raises(expected):
            await call
    assert await store.revision() == before


def test_the_sync_facade_applies_the_same_rules(db_url: str) -> None:
    from flaggery.core import Flaggery

    flaggery = Flaggery.from_db_url(db_url)
    try:
        for name in ("a\x85b", ".", "a\u200bb", "\ufffd"):
            with pytest.raises(errors.ValidationError):
                flaggery.add_feature(name)
            with pytest.raises(errors.ValidationError):
                flaggery.add_group(name)
        with pytest.raises(errors.FeatureNotFound):
            flaggery.get_feature("a\x00b")
        with pytest.raises(errors.GroupNotFound):
            flaggery.get_group("a\x00b")
        assert flaggery.list_features() == [] and flaggery.list_groups() == []
    finally:
        flaggery.close()
