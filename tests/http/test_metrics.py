"""Prometheus metrics: the route-template labels, the snapshot gauges, and the hot path's tally
agreeing exactly with prometheus-client's own ``observe``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from flaggery.http.metrics import Metrics, ObservingTally, Tally
from tests.http.conftest import MakeClient
from tests.http.helpers import fails, ok, seed_basics

LATENCIES = [0.00005, 0.0001, 0.0003, 0.002, 0.04, 0.7, 3.0, 12.0]


def _exposition(metrics: Metrics) -> str:
    registry = CollectorRegistry()
    registry.register(metrics.latency)
    registry.register(metrics.requests)
    lines = generate_latest(registry).decode().splitlines()
    return "\n".join(line for line in lines if "_created" not in line)


def test_tally_equals_observe() -> None:
    observed, tallied = Metrics(), Metrics()
    requests, latency = observed.bind("/r", "GET", 200)
    tally = tallied.tally("/r", "GET", 200)
    assert isinstance(tally, Tally)
    for seconds in LATENCIES * 3:
        requests.inc()
        latency.observe(seconds)
        tally.record(seconds)
    tally.flush()
    assert tally.count == 0
    assert _exposition(tallied) == _exposition(observed)
    tally.flush()  # nothing pending: nothing changes
    assert _exposition(tallied) == _exposition(observed)


async def test_metrics_route(make_client: MakeClient) -> None:
    client = await make_client(enable_prometheus=True)
    await seed_basics(client)
    for _ in range(3):
        ok(await client.get("/v1/subjects/1/flags"))
    fails(await client.get("/v1/subjects/99/flags"), 404, "SubjectNotFound")
    fails(await client.get("/v1/subjects/x"), 422, "RequestValidationError")
    fails(await client.get("/no/such/route"), 404, "NotFound")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    flags = 'route="/v1/subjects/{subject_id}/flags"'
    assert f'flaggery_http_requests_total{{method="GET",{flags},status="200"}} 3.0' in text
    assert f'flaggery_http_requests_total{{method="GET",{flags},status="404"}} 1.0' in text
    assert 'route="/v1/subjects/{subject_id}",status="422"' in text
    assert 'route="<unmatched>",status="404"' in text
    assert 'route="/v1/subjects/{subject_id}",status="201"' in text
    assert "flaggery_http_request_duration_seconds_bucket" in text
    assert "flaggery_snapshot_subjects 8.0" in text
    assert "flaggery_snapshot_revision" in text and "flaggery_snapshot_age_seconds" in text
    assert 'flaggery_snapshot_refreshes_total{kind="full"} 1.0' in text
    assert 'flaggery_snapshot_refreshes_total{kind="incremental"}' in text
    assert "flaggery_feed_reconnects_total 0.0" in text
    assert "/v1/subjects/1/" not in text  # never raw paths


async def test_metrics_off_by_default(client: httpx.AsyncClient) -> None:
    fails(await client.get("/metrics"), 404, "NotFound")


async def test_docs_can_be_turned_off(make_client: MakeClient) -> None:
    client = await make_client(enable_docs=False)
    fails(await client.get("/docs"), 404, "NotFound")
    fails(await client.get("/openapi.json"), 404, "NotFound")
    fails(await client.get("/docs/assets/swagger-ui.css"), 404, "NotFound")


def _multiprocess_exposition(directory: Path, mode: str) -> tuple[str, str]:
    """(what the child printed, the aggregated exposition of its samples in `directory`)."""
    child = subprocess.run(
        [sys.executable, "-m", "tests.http.metrics_process", mode],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)},
    )
    assert child.returncode == 0, child.stderr
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    return child.stdout.strip(), generate_latest(registry).decode()


def test_tally_equals_observe_in_multiprocess_mode(tmp_path: Path) -> None:
    """The mode the tally exists for: samples in memory-mapped files, aggregated on scrape."""
    (tmp_path / "observe").mkdir()
    (tmp_path / "tally").mkdir()
    _, observed = _multiprocess_exposition(tmp_path / "observe", "observe")
    kind, tallied = _multiprocess_exposition(tmp_path / "tally", "tally")
    assert kind == "Tally"  # the bulk path, not the fallback
    assert "flaggery_http_request_duration_seconds_bucket" in observed
    # Files are read in directory order, so metric families may come in any order.
    assert sorted(tallied.splitlines()) == sorted(observed.splitlines())


def test_the_installed_client_supports_the_bulk_tally() -> None:
    _, latency = Metrics().bind("/r", "GET", 200)
    assert Tally.supports(latency)


@pytest.mark.parametrize("missing", ["_buckets", "_sum", "_upper_bounds"])
def test_a_client_without_the_private_fields_is_not_supported(missing: str) -> None:
    _, latency = Metrics().bind("/r", "GET", 200)
    fields = {name: getattr(latency, name) for name in ("_buckets", "_sum", "_upper_bounds")}
    assert Tally.supports(SimpleNamespace(**fields))  # type: ignore[arg-type]
    del fields[missing]  # as if prometheus-client renamed it
    assert not Tally.supports(SimpleNamespace(**fields))  # type: ignore[arg-type]


def test_falls_back_to_observe_without_the_private_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    observed, tallied = Metrics(), Metrics()
    requests, latency = observed.bind("/r", "GET", 200)
    monkeypatch.setattr(Tally, "supports", staticmethod(lambda latency: False))
    tally = tallied.tally("/r", "GET", 200)
    assert isinstance(tally, ObservingTally)
    for seconds in LATENCIES:
        requests.inc()
        latency.observe(seconds)
        tally.record(seconds)
    assert _exposition(tallied) == _exposition(observed)  # recorded at once, no flush needed


async def test_invented_methods_do_not_grow_the_labels(make_client: MakeClient) -> None:
    """Issue 8 item 11: no cache-like structure grows with what clients send."""
    client = await make_client(enable_prometheus=True)
    for number in range(40):
        await client.request(f"BREW{number}", "/v1/features")
    text = (await client.get("/metrics")).text
    assert "BREW" not in text
    assert 'method="OTHER"' in text
