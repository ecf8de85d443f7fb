"""The cost of BoundedCache (flaggery.engine.evaluation) in CPU time, against the design it
replaced (one dict emptied when full), in the same process, rounds alternating:

- ``hit``: a lookup of a key the cache holds (the hot path: a targeting key seen before);
- ``new``: a lookup that misses (the young generation, then the old), then the store of a
  new key (a visitor never seen);
- ``hot_survival``: the share of lookups of 500 hot keys that hit while 20 new keys arrive
  per hot lookup (a flood of UUIDs; each hot key comes back after 10,000 new ones), at the
  limit flaggery uses for keys (32,768).

CPU time (time.process_time), so that a loaded machine changes the numbers little; the load
average is printed with them. One command: ``python bench/bounded_cache_bench.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import print_measures

from flaggery.engine.evaluation import BoundedCache
from flaggery.engine.units import EVALUATION_CACHE_SIZE


class EmptyingCache:
    """The replaced design: a dict emptied whenever it reaches `limit` entries."""

    __slots__ = ("_entries", "_limit", "get", "old")

    def __init__(self, limit: int) -> None:
        self._entries: dict[Any, Any] = {}
        self._limit = limit
        self.get = self._entries.get
        self.old: dict[Any, Any] = {}  # always empty: the callers' pattern costs it a lookup

    def put(self, key: Any, value: Any) -> None:
        entries = self._entries
        if len(entries) >= self._limit:
            entries.clear()
        entries[key] = value


def _hit_ns(make: Callable[[int], Any], lookups: int) -> float:
    cache = make(EVALUATION_CACHE_SIZE)
    keys = [str(uuid.uuid4()) for _ in range(1000)]
    for key in keys:
        cache.put(key, key)
    get = cache.get
    order = keys * (lookups // len(keys))
    start = time.process_time()
    for key in order:
        get(key)
    return (time.process_time() - start) / len(order) * 1e9


def _new_ns(make: Callable[[int], Any], lookups: int) -> float:
    cache = make(EVALUATION_CACHE_SIZE)
    keys = [str(uuid.uuid4()) for _ in range(lookups)]
    get, put = cache.get, cache.put
    start = time.process_time()
    for key in keys:  # the callers' pattern (BoundedCache's docstring)
        if get(key) is None:
            put(key, cache.old.get(key) or key)
    return (time.process_time() - start) / len(keys) * 1e9


def _hot_survival(make: Callable[[int], Any], hot_lookups: int) -> float:
    cache = make(EVALUATION_CACHE_SIZE)
    hot = [f"hot-{number}" for number in range(500)]
    hits = 0
    for number in range(hot_lookups):
        for _ in range(20):
            key = str(uuid.uuid4())
            if cache.get(key) is None:
                cache.put(key, cache.old.get(key) or key)
        key = hot[number % len(hot)]
        found = cache.get(key)
        if found is None:
            found = cache.old.get(key)
            cache.put(key, found or key)
        hits += found is not None
    return hits / hot_lookups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lookups", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    designs = {"emptying": EmptyingCache, "generations": BoundedCache}
    runs: dict[str, dict[str, list[float]]] = {name: {"hit": [], "new": []} for name in designs}
    for _ in range(args.rounds):
        for name, make in designs.items():  # alternating, so drift hits both alike
            runs[name]["hit"].append(_hit_ns(make, args.lookups))
            runs[name]["new"].append(_new_ns(make, args.lookups))
    result: dict[str, object] = {}
    for name in designs:
        for kind in ("hit", "new"):
            result[f"{name}_{kind}_ns"] = round(min(runs[name][kind]), 1)
        result[f"{name}_hot_survival"] = round(_hot_survival(designs[name], 20_000), 3)
    result["hit_ratio"] = round(result["generations_hit_ns"] / result["emptying_hit_ns"], 2)  # type: ignore[operator]
    result["load_average"] = round(os.getloadavg()[0], 1)
    print_measures("bounded_cache", result)


if __name__ == "__main__":
    main()
