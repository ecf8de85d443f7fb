"""The OpenAPI 3.1 document: valid, complete, and true to the routes it describes."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]  # openapi-spec-validator brings it
from openapi_spec_validator import validate
from starlette.routing import Route

from flaggery.http import create_app
from flaggery.http.app import OPERATIONS
from flaggery.ofrep.app import ROUTES as OFREP_ROUTES
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
    # OpenAPI names a path parameter without Starlette's convertor ({key:targeting_key}).
    assert documented == {(op.method, re.sub(r":\w+}", "}", op.path)) for op in OPERATIONS} | set(
        OFREP_ROUTES
    )
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
    key = document["paths"]["/v1/keys/{key}/flags"]["get"]["parameters"][0]
    assert key["schema"]["maxLength"] == 256 and "%2F" in key["schema"]["description"]

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


async def test_ofrep_routes_carry_their_bodies_answers_and_error_shapes(
    document: dict[str, Any],
) -> None:
    schemas = document["components"]["schemas"]
    single = document["paths"]["/ofrep/v1/evaluate/flags/{key}"]["post"]
    bulk = document["paths"]["/ofrep/v1/evaluate/flags"]["post"]
    events = document["paths"]["/ofrep/v1/events"]["get"]
    request = {"$ref": "#/components/schemas/OfrepEvaluationRequest"}
    for operation in (single, bulk):
        assert operation["requestBody"]["content"]["application/json"]["schema"] == request
        assert operation["tags"] == ["ofrep"]
    context = schemas["OfrepEvaluationRequest"]["properties"]["context"]
    assert context["properties"]["targetingKey"]["type"] == "string"

    def schema_of(answer: dict[str, Any]) -> str:
        ref: str = answer["content"]["application/json"]["schema"]["$ref"]
        return ref.rsplit("/", 1)[1]

    assert schema_of(single["responses"]["200"]) == "FlagEvaluation"
    assert set(schemas["FlagEvaluation"]["required"]) == {"key", "reason", "variant", "metadata"}
    assert schema_of(bulk["responses"]["200"]) == "BulkEvaluation"
    # A failure naming the flag key where OfrepApp sends one (400/404 of one flag), else the
    # general shape; never flaggery's ErrorEnvelope.
    assert schema_of(single["responses"]["404"]) == "FlagFailure"
    assert "FLAG_NOT_FOUND" in single["responses"]["404"]["description"]
    assert schema_of(single["responses"]["400"]) == "FlagFailure"
    assert schema_of(single["responses"]["401"]) == "GeneralError"
    assert schema_of(bulk["responses"]["400"]) == "GeneralError"
    assert set(bulk["responses"]) == {"200", "304", "400", "401", "403", "413", "429", "503"}
    assert "text/event-stream" in events["responses"]["200"]["content"]
    assert "Retry-After" in events["responses"]["503"]["headers"]
    codes = schemas["GeneralError"]["properties"]["errorCode"]["enum"]
    assert "TARGETING_KEY_MISSING" in codes and "FLAG_NOT_FOUND" in codes


async def test_ofrep_answers_are_what_the_document_says(
    client: httpx.AsyncClient, document: dict[str, Any]
) -> None:
    """Each status OfrepApp answers is documented, and its body validates against the
    documented schema."""
    ok(await client.put("/v1/buckets", params={"amount": 1}))
    ok(await client.post("/v1/subjects/1", params={"weight": 1}), 201)
    ok(await client.post("/v1/features/checkout"), 201)
    ok(await client.post("/v1/features/checkout/variants/on", params={"make_default": True}), 201)
    context = {"context": {"targetingKey": "1"}}
    single, bulk = "/ofrep/v1/evaluate/flags/{key}", "/ofrep/v1/evaluate/flags"
    answers = [
        (single, await client.post("/ofrep/v1/evaluate/flags/checkout", json=context)),
        (single, await client.post("/ofrep/v1/evaluate/flags/nope", json=context)),
        (single, await client.post("/ofrep/v1/evaluate/flags/checkout", content=b"{")),
        (bulk, await client.post(bulk, json={"context": {"targetingKey": "x" * 257}})),
        (bulk, await client.post(bulk, json={})),
    ]
    first = await client.post(bulk, json=context)
    answers.append((bulk, first))
    etag = {"If-None-Match": first.headers["etag"]}
    answers.append((bulk, await client.post(bulk, json=context, headers=etag)))
    assert [answer.status_code for _, answer in answers] == [200, 404, 400, 400, 400, 200, 304]
    for path, answer in answers:
        documented = document["paths"][path]["post"]["responses"][str(answer.status_code)]
        if answer.status_code == 304:
            assert "content" not in documented
            continue
        ref = documented["content"]["application/json"]["schema"]["$ref"]
        Draft202012Validator({**document, "$ref": ref}).validate(answer.json())


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


async def test_event_streams_document_each_event(document: dict[str, Any]) -> None:
    """OpenAPI 3.1 reads the schema of a text/event-stream response as the schema of each event
    (schemathesis validates each parsed event against it): an object with its data, not a
    string, for both streams."""
    for path in ("/v1/stream", "/ofrep/v1/events"):
        content = document["paths"][path]["get"]["responses"]["200"]["content"]
        validator = Draft202012Validator(content["text/event-stream"]["schema"])
        validator.validate({"data": '{"revision": 3}', "event": "message", "id": "3"})
        validator.validate({"data": "{}", "event": "refetchEvaluation", "retry": 1000})
        assert not validator.is_valid("id: 3\r\nevent: message\r\ndata: {}\r\n\r\n")
        assert not validator.is_valid({"event": "message"})  # every event carries data
