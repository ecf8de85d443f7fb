"""Every Prometheus metric flaggery exports, declared here and nowhere else.

One ``Metrics`` per app (``registry=None``: no global state at import, any number of apps in
one test process). With several workers, uvicorn's parent prepares ``PROMETHEUS_MULTIPROC_DIR``
(see ``flaggery.cli``); each worker then writes its samples to memory-mapped files there and
whichever worker answers ``/metrics`` aggregates all of them. Per-worker gauges use the
``live*`` modes so a stopped worker's values disappear.

Request labels are route *templates* (``/v1/subjects/{subject_id}/flags``), never raw paths,
and each label combination is bound to its child once, then reused.
"""

from __future__ import annotations

import os
import time
from bisect import bisect_left
from collections.abc import Callable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client.metrics import MetricWrapperBase
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flaggery.engine.health_report import AbTestHealth
from flaggery.store.replica import RefreshCounts

__all__ = ["CONTENT_TYPE", "Metrics", "ObservingTally", "RequestMetrics", "Tally"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
NAMESPACE = "flaggery"
UNMATCHED_ROUTE = "<unmatched>"
# Methods are label values and keys of `Metrics._bound`: any other name a client sends counts
# as OTHER, so neither the label set nor the dict grows with what clients invent.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
OTHER_METHOD = "OTHER"
# Serving takes microseconds; admin writes take milliseconds; anything past a second is trouble.
LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip


STATE_VALUES = {"green": 0, "yellow": 1, "red": 2}
"""An A/B test's health state as the abtest_health_state gauge's value."""


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Metrics:
    def __init__(self) -> None:
        self.multiprocess = multiprocess_dir() is not None
        self.requests = Counter(
            "http_requests",
            "HTTP requests answered, by route template, method and status code.",
            ["route", "method", "status"],
            namespace=NAMESPACE,
            registry=None,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time from request to the last response byte handed to the server.",
            ["route", "method"],
            namespace=NAMESPACE,
            buckets=LATENCY_BUCKETS,
            registry=None,
        )
        self.revision = Gauge(
            "snapshot_revision",
            "Revision of the served snapshot (the oldest among live workers).",
            namespace=NAMESPACE,
            multiprocess_mode="livemin",
            registry=None,
        )
        self.age = Gauge(
            "snapshot_age_seconds",
            "Seconds since the snapshot was last confirmed current (the worst live worker).",
            namespace=NAMESPACE,
            multiprocess_mode="livemax",
            registry=None,
        )
        self.subjects = Gauge(
            "snapshot_subjects",
            "Subjects in the served snapshot.",
            namespace=NAMESPACE,
            multiprocess_mode="livemax",
            registry=None,
        )
        self.refreshes = Counter(
            "snapshot_refreshes",
            "Snapshot refreshes by kind: incremental (change log), full (reload), failed "
            "(database unreachable, or the state does not build).",
            ["kind"],
            namespace=NAMESPACE,
            registry=None,
        )
        self.build_failing = Gauge(
            "snapshot_build_failing",
            "1 while the database's newest state cannot be built into a snapshot (a bad "
            "record, named in the log and on /readyz); the last good snapshot is served.",
            namespace=NAMESPACE,
            multiprocess_mode="livemax",
            registry=None,
        )
        self.protocol_fallback = Gauge(
            "http_protocol_fallback",
            "1 when uvicorn's internals failed the start-up check, so `flaggery serve` uses "
            "uvicorn's stock protocol with the read deadline only (the log says why); 0 when "
            "flaggery's protocol serves.",
            namespace=NAMESPACE,
            multiprocess_mode="livemax",
            registry=None,
        )
        self.reconnects = Counter(
            "feed_reconnects",
            "Times the change feed lost its database connection and reconnected.",
            namespace=NAMESPACE,
            registry=None,
        )
        self.webhook_failing = Gauge(
            "webhook_failing",
            "1 for a webhook subscription whose deliveries have failed for longer than "
            "FLAGGERY_WEBHOOK_FAILING_AFTER (still retried), 0 otherwise; admin servers only.",
            ["webhook"],
            namespace=NAMESPACE,
            multiprocess_mode="livemax",
            registry=None,
        )
        self.abtest_sequential_p = Gauge(
            "abtest_srm_sequential_p",
            "Per live A/B test: the anytime-valid sequential p-value of its sample ratio "
            "(registered subjects' first exposures against the allocation's split).",
            ["test"],
            namespace=NAMESPACE,
            multiprocess_mode="livemin",
            registry=None,
        )
        self.abtest_state = Gauge(
            "abtest_health_state",
            "Per live A/B test: 0 green, 1 yellow, 2 red (docs/experiments.md).",
            ["test"],
            namespace=NAMESPACE,
            multiprocess_mode="livemax",
            registry=None,
        )
        self._abtests_shown: set[str] = set()
        self._bound: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._tallies: list[Tally | ObservingTally] = []
        self._seen = RefreshCounts()

    def sample_webhooks(self, failing: dict[str, bool]) -> None:
        """Set the webhook gauge to ``failing`` (subscription -> failing), dropping the
        subscriptions that are gone."""
        self.webhook_failing.clear()
        for name, is_failing in failing.items():
            self.webhook_failing.labels(name).set(is_failing)

    def bind(self, route: str, method: str, status: int) -> tuple[Counter, Histogram]:
        """The (requests, latency) children for one label combination, bound once."""
        if method not in KNOWN_METHODS:
            method = OTHER_METHOD
        key = (route, method, status)
        children = self._bound.get(key)
        if children is None:
            children = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route, method),
            )
            self._bound[key] = children
        return children

    def tally(self, route: str, method: str, status: int) -> Tally | ObservingTally:
        """A hot-path recorder for one label combination, flushed by ``sample``: a bulk
        `Tally` where prometheus-client has the fields it adds to, else an `ObservingTally`."""
        requests, latency = self.bind(route, method, status)
        kind = Tally if Tally.supports(latency) else ObservingTally
        tally = kind(requests, latency)
        self._tallies.append(tally)
        return tally

    def sample(
        self,
        counts: RefreshCounts,
        revision: int,
        subjects: int,
        age: float | None,
        *,
        build_failing: bool = False,
    ) -> None:
        """Flush the tallies and copy the evaluator's state into the gauges and counters
        (cheap; run every second in each worker, and just before a scrape in the worker that
        answers it)."""
        for tally in self._tallies:
            tally.flush()
        if revision >= 0:
            self.revision.set(revision)
            self.subjects.set(subjects)
        if age is not None:
            self.age.set(age)
        self.build_failing.set(int(build_failing))
        for kind in ("incremental", "full", "failed"):
            delta = getattr(counts, kind) - getattr(self._seen, kind)
            if delta > 0:
                self.refreshes.labels(kind).inc(delta)
        if counts.reconnects > self._seen.reconnects:
            self.reconnects.inc(counts.reconnects - self._seen.reconnects)
        self._seen = RefreshCounts(
            counts.incremental, counts.full, counts.failed, counts.reconnects
        )

    def sample_abtests(self, healths: Mapping[str, AbTestHealth]) -> None:
        """Set the per-test gauges to `healths` (live tests only: a test no longer live loses
        its labels)."""
        for gone in self._abtests_shown - healths.keys():
            self.abtest_sequential_p.remove(gone)
            self.abtest_state.remove(gone)
        for name, health in healths.items():
            p = min((population.sequential_p for population in health.populations), default=1.0)
            self.abtest_sequential_p.labels(name).set(p)
            self.abtest_state.labels(name).set(STATE_VALUES[health.state])
        self._abtests_shown = set(healths)

    def exposition(self) -> bytes:
        registry = CollectorRegistry(auto_describe=True)
        if self.multiprocess:
            prometheus_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        else:
            for metric in self._all():
                registry.register(metric)
        return generate_latest(registry)

    def close(self) -> None:
        """Forget this worker's live gauges (multiprocess mode)."""
        if self.multiprocess:
            prometheus_multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]

    def _all(self) -> list[MetricWrapperBase]:
        return [
            self.requests,
            self.latency,
            self.revision,
            self.age,
            self.subjects,
            self.build_failing,
            self.protocol_fallback,
            self.refreshes,
            self.reconnects,
            self.webhook_failing,
            self.abtest_sequential_p,
            self.abtest_state,
        ]


class Tally:
    """Requests and latencies of the hot path, counted in plain Python numbers and added to
    the Prometheus children in bulk once a second.

    ``Counter.inc`` and ``Histogram.observe`` cost about 2 us per request in multiprocess mode
    (each writes to a memory-mapped file), a tenth of what serving a flags request costs. The
    bulk add uses the histogram child's bucket and sum values, which prometheus-client keeps
    as ``_buckets`` (non-cumulative, one per upper bound of ``_upper_bounds``) and ``_sum``:
    private fields, so the dependency is pinned to the tested minor version, test_metrics
    checks the result against ``observe`` (in multiprocess mode too; .ci/run also against the
    newest release), and `supports` sends a client without those fields to `ObservingTally`.
    """

    __slots__ = ("_bounds", "_buckets", "_latency", "_requests", "_sum", "count")

    def __init__(self, requests: Counter, latency: Histogram) -> None:
        self._requests = requests
        self._latency = latency
        self._bounds: list[float] = list(latency._upper_bounds)
        self._buckets = [0] * len(self._bounds)
        self._sum = 0.0
        self.count = 0

    @staticmethod
    def supports(latency: Histogram) -> bool:
        """Whether ``latency`` (a labelled child) has the private fields the bulk add uses."""
        buckets = getattr(latency, "_buckets", None)
        bounds = getattr(latency, "_upper_bounds", None)
        return (
            isinstance(buckets, list)
            and isinstance(bounds, list)
            and len(buckets) == len(bounds)
            and all(hasattr(value, "inc") for value in buckets)
            and hasattr(getattr(latency, "_sum", None), "inc")
        )

    def record(self, seconds: float) -> None:
        """Count one request that took ``seconds``; visible after the next `flush`."""
        self.count += 1
        self._sum += seconds
        self._buckets[bisect_left(self._bounds, seconds)] += 1

    def flush(self) -> None:
        """Add what was recorded since the last flush to the Prometheus children."""
        if not self.count:
            return
        self._requests.inc(self.count)
        self._latency._sum.inc(self._sum)
        for value, count in zip(self._latency._buckets, self._buckets, strict=True):
            if count:
                value.inc(count)
        self._buckets = [0] * len(self._bounds)
        self._sum = 0.0
        self.count = 0


class ObservingTally:
    """The fallback `Tally`: records through prometheus-client's public ``inc``/``observe`` at
    once (about 2 us more per request in multiprocess mode), so ``flush`` has nothing to do."""

    __slots__ = ("_latency", "_requests")

    def __init__(self, requests: Counter, latency: Histogram) -> None:
        self._requests = requests
        self._latency = latency

    def record(self, seconds: float) -> None:
        """Count one request that took ``seconds``."""
        self._requests.inc()
        self._latency.observe(seconds)

    def flush(self) -> None:
        """Nothing is held back."""


class RequestMetrics:
    """Pure ASGI: counts and times every request the router handles, by route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics, clock: Callable[[], float] | None = None):
        self.app = app
        self.metrics = metrics
        self.clock = clock or time.perf_counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = self.clock()
        status = 500

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        finally:
            route: BaseRoute | None = scope.get("route")  # set by the router on a match
            template = getattr(route, "path", UNMATCHED_ROUTE)
            requests, latency = self.metrics.bind(template, scope["method"], status)
            requests.inc()
            latency.observe(self.clock() - started)
