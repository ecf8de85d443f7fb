"""One process's share of the multiprocess metrics test: record LATENCIES one way, then exit.

    python -m tests.http.metrics_process observe|tally

PROMETHEUS_MULTIPROC_DIR must be set in the environment before prometheus-client is imported
(it picks its value class at import), hence a process of its own. Prints the tally's class.
"""

from __future__ import annotations

import sys

from flaggery.http.metrics import Metrics
from tests.http.test_metrics import LATENCIES


def main(mode: str) -> None:
    metrics = Metrics()
    assert metrics.multiprocess, "PROMETHEUS_MULTIPROC_DIR is not set"
    if mode == "observe":
        requests, latency = metrics.bind("/r", "GET", 200)
        for seconds in LATENCIES * 3:
            requests.inc()
            latency.observe(seconds)
        print("observe")
        return
    tally = metrics.tally("/r", "GET", 200)
    for seconds in LATENCIES * 3:
        tally.record(seconds)
    tally.flush()
    print(type(tally).__name__)


if __name__ == "__main__":
    main(sys.argv[1])
