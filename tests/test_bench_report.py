"""bench/report.py's wrk parser on real wrk 4 reports (captured against a local server)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

CLEAN = """\
Running 1s test @ http://127.0.0.1:18931/
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     6.41ms    5.98ms  41.77ms   88.00%
    Req/Sec   743.50    284.80     1.03k    60.00%
  Latency Distribution
     50%    4.37ms
     75%    7.76ms
     90%   14.28ms
     99%   30.63ms
  748 requests in 1.01s, 1.71MB read
Requests/sec:    740.04
Transfer/sec:      1.69MB
"""
WITH_ERRORS = """\
Running 1s test @ http://127.0.0.1:18931/nope
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   363.00us    2.94ms  23.79ms   86.29%
    Req/Sec     1.20k   226.72     1.51k    60.00%
  Latency Distribution
     50%  267.00us
     75%    4.62ms
     90%    7.31ms
     99%    1.56s
  1195 requests in 1.00s, 606.84KB read
  Socket errors: connect 1, read 2, write 3, timeout 4
  Non-2xx or 3xx responses: 1195
Requests/sec:   1192.81
Transfer/sec:    605.72KB
"""


def load_report() -> ModuleType:
    # bench/ is a directory of scripts, not a package: load the module from its file.
    path = Path(__file__).parent.parent / "bench" / "report.py"
    spec = importlib.util.spec_from_file_location("bench_report", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


report = load_report()


def test_a_clean_run() -> None:
    assert report.parse_wrk(CLEAN) == {
        "requests": 748,
        "rps": 740.04,
        "non_2xx": 0,
        "socket_errors": 0,
        "p50_ms": 4.37,
        "p99_ms": 30.63,
    }


def test_errors_and_latency_units() -> None:
    result = report.parse_wrk(WITH_ERRORS)
    assert result["non_2xx"] == 1195
    assert result["socket_errors"] == 1 + 2 + 3 + 4
    assert result["p50_ms"] == 0.267
    assert result["p99_ms"] == 1560.0


def test_output_that_is_not_a_wrk_report_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="unexpected wrk output"):
        report.parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")
