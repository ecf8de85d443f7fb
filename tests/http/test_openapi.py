"""The OpenAPI 3.1 document: valid, complete, and true to the routes it describes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate
from starlette.routing import Route

from flaggery.http import create_app
from flaggery.http.app import OPERATIONS
from flaggery.settings import Settings
from tests.http.helpers import ok

HTTP_METHODS = {"get", "put", "post", "delete"}


@pytest.fixture
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    body: dict[str, Any] = ok(await client.get("/openapi.json"))
    return body


async def test_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    validate(document)


async def test_every_operation_is_documented(document: dict[str, Any]) -> None:
    documented = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }
    assert documented == {(op.method, op.path) for op in OPERATIONS}
    app = create_app(Settings())
    routed = {
        (method, route.path)
        for route in app.routes
        if isinstance(route, Route) and route.path.startswith("/v1/")
        for method in route.methods or ()
        if method != "HEAD"
    }
    assert routed == {(op.method, op.path) for op in OPERATIONS if op.path.startswith("/v1/")}


async def test_operations_describe_parameters_bodies_and_errors(
    document: dict[str, Any],
) -> None:
    add = document["paths"]["/v1/subjects/{subject_id}"]["post"]
    parameters = {(p["name"], p["in"]): p for p in add["parameters"]}
    assert parameters[("subject_id", "path")]["schema"]["format"] == "int64"
    assert parameters[("weight", "query")]["required"] is True
    assert set(add["responses"]) == {"201", "400", "409", "422", "423", "503"}
    assert "NoBuckets" in add["responses"]["409"]["description"]
    assert "security" not in add  # no token configured

    rollout = document["paths"]["/v1/features/{feature}/rollout"]["put"]
    optional = {p["name"]: p for p in rollout["parameters"] if p["in"] == "query"}
    assert optional["proportion"]["schema"] == {"type": "number"}
    assert not optional["variant"]["required"]

    abtest = document["paths"]["/v1/abtests"]["post"]
    assert abtest["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/AbTestBody"
    }
    flags = document["paths"]["/v1/subjects/{subject_id}/flags"]["get"]
    assert set(flags["responses"]) == {"200", "404", "422", "503"}
    envelope = document["components"]["schemas"]["ErrorEnvelope"]
    assert envelope["properties"]["exception"] == {"$ref": "#/components/schemas/ErrorBody"}


async def test_token_and_metrics_show_when_configured() -> None:
    app = create_app(Settings(admin_token="t", enable_prometheus=True))
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        document = ok(await client.get("/openapi.json"))
    validate(document)
    assert document["components"]["securitySchemes"]["adminToken"]["scheme"] == "bearer"
    add = document["paths"]["/v1/subjects/{subject_id}"]["post"]
    assert add["security"] == [{"adminToken": []}] and "401" in add["responses"]
    assert "security" not in document["paths"]["/v1/subjects/{subject_id}"]["get"]
    assert "/metrics" in document["paths"]
