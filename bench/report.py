"""How the single-result benchmarks print: a two-column table for people, a JSON line for tools."""

from __future__ import annotations

import json
from collections.abc import Mapping


def print_measures(benchmark: str, result: Mapping[str, object]) -> None:
    width = max(len(key) for key in result) + 2
    print(f"{'measure':<{width}}{'value':>14}")
    for key, value in result.items():
        print(f"{key:<{width}}{value!s:>14}")
    print(json.dumps({"benchmark": benchmark, **result}))
