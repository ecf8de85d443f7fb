"""What benchmarks share about results: reading wrk's report, summarising latencies, and
printing a table for people plus a JSON line for tools."""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Mapping, Sequence

_LATENCY_SCALE_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_wrk(output: str) -> dict[str, float]:
    """wrk's ``--latency`` report as numbers.

    Keys: ``requests`` (completed), ``rps`` (requests/s), ``non_2xx`` (responses outside
    2xx/3xx), ``socket_errors`` (connect + read + write + timeout), and ``p50_ms``/``p99_ms``
    (latency percentiles in milliseconds). Raises RuntimeError if ``output`` is not a wrk
    report (no request total), so a wrk failure never reads as zero requests.
    """
    total = re.search(r"(\d+) requests in [\d.]+\w+", output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if total is None or rate is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    result = {
        "requests": float(total.group(1)),
        "rps": float(rate.group(1)),
        "non_2xx": float(non_2xx.group(1)) if non_2xx else 0.0,
        "socket_errors": float(sum(map(int, sockets.groups()))) if sockets else 0.0,
    }
    for percentile in ("50", "99"):
        match = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        if match:
            scale = _LATENCY_SCALE_MS[match.group(2)]
            result[f"p{percentile}_ms"] = round(float(match.group(1)) * scale, 3)
    return result


def percentile(values: Sequence[float], fraction: float) -> float:
    """The value at ``fraction`` (0..1) of ``values`` (not empty), by rank in sorted order."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def latency_measures(latencies: Mapping[str, Sequence[float]]) -> dict[str, object]:
    """``<kind>_writes``, ``_p50_ms``, ``_p99_ms`` and ``_max_ms`` of each kind's latencies (ms)."""
    result: dict[str, object] = {}
    for kind, values in latencies.items():
        result[f"{kind}_writes"] = len(values)
        result[f"{kind}_p50_ms"] = round(statistics.median(values), 2)
        result[f"{kind}_p99_ms"] = round(percentile(values, 0.99), 2)
        result[f"{kind}_max_ms"] = round(max(values), 2)
    return result


def print_measures(benchmark: str, result: Mapping[str, object]) -> None:
    """A two-column table of ``result``, then one JSON line ``{"benchmark": ..., **result}``."""
    width = max(len(key) for key in result) + 2
    print(f"{'measure':<{width}}{'value':>14}")
    for key, value in result.items():
        print(f"{key:<{width}}{value!s:>14}")
    print(json.dumps({"benchmark": benchmark, **result}))
