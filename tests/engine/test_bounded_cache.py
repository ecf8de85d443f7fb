"""BoundedCache keeps at most its limit, keeps keys that keep coming back however many new
keys flood it (two generations, read as its docstring says), drops keys not seen again, and
keeps one `get` for life."""

from __future__ import annotations

import uuid

import pytest

from flaggery.engine.evaluation import BoundedCache

LIMIT = 1_000


COMPUTED: list[str] = []


def _lookup(cache: BoundedCache[str, str], key: str) -> str:
    """The caller's pattern of the class docstring; COMPUTED records each computation."""
    found = cache.get(key)
    if found is None:
        found = cache.old.get(key)
        if found is None:
            COMPUTED.append(key)
            found = key.upper()
        cache.put(key, found)
    return found


def test_hot_keys_survive_a_flood_of_new_keys() -> None:
    cache: BoundedCache[str, str] = BoundedCache(LIMIT)
    hot = [f"hot-{number}" for number in range(100)]
    for key in hot:
        _lookup(cache, key)
    COMPUTED.clear()
    for round_ in range(200):  # 20,000 new keys: 20 times the limit
        for _ in range(100):
            _lookup(cache, str(uuid.uuid4()))
        for key in hot[round_ % 3 :: 3]:  # each hot key every 300 new keys (< LIMIT // 2)
            assert _lookup(cache, key) == key.upper()
        assert len(cache) <= LIMIT
    assert not set(COMPUTED) & set(hot)  # never computed again


def test_a_key_not_seen_again_is_dropped_within_limit_new_keys() -> None:
    cache: BoundedCache[str, str] = BoundedCache(LIMIT)
    cache.put("once", "ONCE")
    for number in range(LIMIT):
        cache.put(str(number), "x")
    assert cache.get("once") is None and cache.old.get("once") is None
    assert len(cache) <= LIMIT


def test_get_is_one_object_for_life_and_answers_none_or_type_error() -> None:
    cache: BoundedCache[object, str] = BoundedCache(4)
    get = cache.get
    for number in range(50):
        cache.put(number, str(number))
        assert get(number) == str(number)  # the bound `get` sees the young generation
        assert number < 2 or cache.old.get(number - 2) == str(number - 2) or get(number - 2)
    assert get("absent") is None
    with pytest.raises(TypeError):
        get([])  # unhashable: callers turn it into their own error


def test_a_limit_below_two_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        BoundedCache(1)
