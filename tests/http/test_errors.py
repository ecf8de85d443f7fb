"""The error envelope on every kind of error, and the one status table."""

from __future__ import annotations

import inspect

import httpx
import pytest

from flaggery import errors
from flaggery.http.errors import (
    STATUS_BY_ERROR,
    ContentTooLarge,
    RequestValidationError,
    status_for,
)
from flaggery.store.repository import AsyncFlaggery
from tests.http.conftest import MakeClient
from tests.http.helpers import fails, ok

EXPECTED_STATUS = {
    "AmbiguousCredentials": 400,
    "InvalidTargetingKey": 400,
    "TooManyAttempts": 429,
    "MisdirectedRequest": 421,
    "TooManyStreams": 503,
    "SubjectNotFound": 404,
    "FeatureNotFound": 404,
    "VariantNotFound": 404,
    "GroupNotFound": 404,
    "AbTestNotFound": 404,
    "RolloutNotFound": 404,
    "BucketNotFound": 404,
    "OverrideNotFound": 404,
    "ChangeNotFound": 404,
    "RevertRefused": 409,
    "VariantExists": 400,
    "AbTestExists": 400,
    "GroupExists": 400,
    "SubjectExists": 400,
    "FeatureExists": 400,
    "RolloutExists": 400,
    "WebhookTargetRefused": 400,
    "ScheduleExists": 400,
    "PlanExists": 400,
    "WebhookExists": 400,
    "ScheduleNotFound": 404,
    "PlanNotFound": 404,
    "WebhookNotFound": 404,
    "PlanStateConflict": 409,
    "InvalidRolloutProportion": 400,
    "SubjectAlreadyInGroup": 400,
    "SubjectNotInGroup": 400,
    "FeatureHasChildren": 400,
    "VariantIsUsed": 400,
    "GroupIsUsed": 400,
    "NoBuckets": 409,
    "AbTestIsLive": 409,
    "AbTestNotLive": 409,
    "EntityChanged": 412,
    "NotAdmin": 423,
    "Unauthorized": 401,
    "Forbidden": 403,
    "RevisionNotReached": 503,
    "UpstreamRefused": 503,
}


def test_every_leaf_error_has_its_status() -> None:
    leaves = {
        name: cls
        for name, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.FlaggeryError) and not cls.__subclasses__()
    }
    assert set(leaves) == set(EXPECTED_STATUS)
    assert {name: status_for(cls) for name, cls in leaves.items()} == EXPECTED_STATUS
    assert status_for(errors.ValidationError) == 400  # a branch since WebhookTargetRefused
    assert status_for(RequestValidationError) == 422
    assert status_for(ContentTooLarge) == 413
    # Branches with a name of their own on the wire (an edge's upstream is its database).
    assert status_for(errors.DatabaseUnavailable) == status_for(errors.UpstreamUnavailable) == 503
    assert all(issubclass(cls, errors.FlaggeryError) for cls in STATUS_BY_ERROR)


async def test_unknown_route_and_method(client: httpx.AsyncClient) -> None:
    message = fails(await client.get("/v2/nothing"), 404, "NotFound")
    assert "/v2/nothing" in message
    response = await client.patch("/v1/buckets")
    fails(response, 405, "MethodNotAllowed")
    assert response.headers["allow"] == "GET, HEAD, PUT"  # sorted: the same in every process


async def test_malformed_requests(client: httpx.AsyncClient) -> None:
    message = fails(
        await client.put("/v1/buckets", params={"amount": 1, "colour": "red"}),
        422,
        "RequestValidationError",
    )
    assert "colour" in message
    fails(await client.post("/v1/abtests", content=b"not json"), 422, "RequestValidationError")
    fails(await client.post("/v1/abtests", json=[]), 422, "RequestValidationError")


async def test_database_unavailable_is_503(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unreachable(*_: object) -> None:
        raise errors.DatabaseUnavailable("The database is unreachable (test). Retry later.")

    monkeypatch.setattr(AsyncFlaggery, "add_feature", unreachable)
    fails(await client.post("/v1/features/f"), 503, "DatabaseUnavailable")


async def test_bug_is_a_generic_500(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: object) -> list[str]:
        raise ZeroDivisionError("secret internals")

    monkeypatch.setattr(AsyncFlaggery, "list_features", broken)
    client = await make_client(raise_app_exceptions=False)
    response = await client.get("/v1/features")
    message = fails(response, 500, "InternalError")
    assert "secret" not in response.text and "Traceback" not in response.text
    assert "log" in message
    ok(await client.get("/healthz"))  # the app goes on serving


async def test_body_too_large(client: httpx.AsyncClient) -> None:
    from flaggery.http.endpoint import MAX_BODY_BYTES

    big = b"[" + b" " * MAX_BODY_BYTES + b"]"
    fails(await client.post("/v1/subjects", content=big), 413, "ContentTooLarge")
