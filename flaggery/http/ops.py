"""Operations routes: health, readiness, Prometheus metrics, the OpenAPI document and Swagger UI.

All of them are public (served in read-only mode and without the admin token). ``/docs`` is
Swagger UI from files bundled in the package (no CDN), and can be turned off with
``FLAGGERY_ENABLE_DOCS=false``, which also removes ``/openapi.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from flaggery.errors import DatabaseUnavailable
from flaggery.http.codec import Health, IgnoredQuery, Readiness
from flaggery.http.endpoint import Call, Operation, Services
from flaggery.http.metrics import CONTENT_TYPE

__all__ = ["OPERATIONS", "routes", "sample_metrics"]

STATIC = Path(__file__).parent / "static"
DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>flaggery API</title>
  <link rel="stylesheet" href="docs/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="docs/assets/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "openapi.json", dom_id: "#swagger-ui", deepLinking: true, validatorUrl: null
    });
  </script>
</body>
</html>
"""


async def healthz(_call: Call[IgnoredQuery, None]) -> Health:
    return Health()


async def readyz(call: Call[IgnoredQuery, None]) -> Readiness:
    call.services.require_snapshot()
    evaluator = call.evaluator
    age = round(evaluator.age_seconds or 0.0, 3)
    return Readiness(
        True,
        evaluator.revision,
        age,
        evaluator.snapshot.subject_count,
        evaluator.stale,
        evaluator.build_error,
    )


OPERATIONS = (
    Operation("GET", "/healthz", healthz, Health, "Liveness: the process answers", "ops",
              query=IgnoredQuery, public=True),
    Operation("GET", "/readyz", readyz, Readiness, "Readiness: a snapshot is loaded", "ops",
              query=IgnoredQuery, errors=(DatabaseUnavailable,), public=True,
              description="503 until the first snapshot is loaded; then 200 even while the "
              "database is unreachable (stale: true), so replicas keep serving their last good "
              "snapshot. age_seconds: since the snapshot was last confirmed current. "
              "build_error: the database's newest state does not build (the last good snapshot "
              "is served, stale: true)."),
)  # fmt: skip


def sample_metrics(services: Services) -> None:
    """Copy this worker's snapshot state into its gauges and counters."""
    metrics = services.metrics
    if metrics is None:
        return
    evaluator = services.evaluator
    subjects = evaluator.snapshot.subject_count if evaluator.revision >= 0 else 0
    metrics.sample(
        evaluator.counts,
        evaluator.revision,
        subjects,
        evaluator.age_seconds,
        build_failing=evaluator.build_error is not None,
    )
    if services.deliverer is not None:
        metrics.sample_webhooks(services.deliverer.failing)
    if services.health_watch is not None:
        metrics.sample_abtests(services.health_watch.latest)


async def metrics(request: Request) -> Response:
    services: Services = request.app.state.services
    assert services.metrics is not None
    sample_metrics(services)
    return Response(services.metrics.exposition(), media_type=CONTENT_TYPE)


def routes(
    *, enable_prometheus: bool, enable_docs: bool, openapi: bytes | None, home: str | None
) -> Sequence[BaseRoute]:
    """The non-JSON routes (the JSON ones are ``OPERATIONS``). ``home``: where ``GET /``
    sends a browser (a 307 to that path), or None for no ``/`` route (404)."""
    found: list[BaseRoute] = []
    if home is not None:
        target = home
        found.append(Route("/", lambda _request: RedirectResponse(target, 307), methods=["GET"]))
    if enable_prometheus:
        found.append(Route("/metrics", metrics, methods=["GET"]))
    if enable_docs and openapi is not None:
        document = openapi

        async def openapi_json(_request: Request) -> Response:
            return Response(document, media_type="application/json")

        async def docs(_request: Request) -> Response:
            return HTMLResponse(DOCS_PAGE)

        found += [
            Route("/openapi.json", openapi_json, methods=["GET"]),
            Route("/docs", docs, methods=["GET"]),
            Mount("/docs/assets", StaticFiles(directory=STATIC), name="docs-assets"),
        ]
    return found
