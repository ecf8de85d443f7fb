"""Prometheus metrics: the route-template labels, the snapshot gauges, and the hot path's tally
agreeing exactly with prometheus-client's own ``observe``."""

from __future__ import annotations

import httpx
from prometheus_client import CollectorRegistry, generate_latest

from flaggery.http.metrics import Metrics
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


async def test_invented_methods_do_not_grow_the_labels(make_client: MakeClient) -> None:
    """Issue 8 item 11: no cache-like structure grows with what clients send."""
    client = await make_client(enable_prometheus=True)
    for number in range(40):
        await client.request(f"BREW{number}", "/v1/features")
    text = (await client.get("/metrics")).text
    assert "BREW" not in text
    assert 'method="OTHER"' in text
