"""A generic OFREP client against a running ``flaggery`` process, unchanged: the OpenFeature
SDK with ``openfeature-provider-ofrep``, plus plain HTTP for what that provider does not do
(bulk evaluation, the event stream, a browser's CORS preflight). SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import itertools
import json
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from flaggery.cli import DRAIN_SECONDS
from flaggery.engine.model import JsonValue
from tests.http.helpers import ok
from tests.http.processes import ServerProcess, flaggery_process

pytestmark = pytest.mark.slow

ADMIN = "admin-secret"
CLIENT = "client-secret"
ORIGIN = "https://shop.example.com"
_domains = itertools.count()


# feature -> {variant: value}: one feature per JSON type a variant's value can have.
TYPED_VARIANTS: dict[str, dict[str, JsonValue]] = {
    "dark": {"yes": True, "no": False},
    "color": {"blue": "#00f", "red": "#f00"},
    "retries": {"few": 3, "many": 10},
    "ratio": {"low": 0.25, "high": 0.75},
    "limits": {"small": {"max": 1}, "big": {"max": 9}},
}


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    env = {
        "FLAGGERY_ADMIN_TOKEN": ADMIN,
        "FLAGGERY_CLIENT_TOKENS": CLIENT,
        "FLAGGERY_CORS_ORIGINS": ORIGIN,
    }
    with flaggery_process(["--admin", "--db-url", db_url], tmp_path, env) as process:
        admin = process.client
        admin.headers["Authorization"] = f"Bearer {ADMIN}"
        ok(admin.put("/v1/buckets", params={"amount": 2}))
        ok(admin.post("/v1/subjects", json=[{"id": 1}, {"id": 2}]), 201)
        for feature, values in TYPED_VARIANTS.items():
            ok(admin.post(f"/v1/features/{feature}"), 201)
            for position, (variant, value) in enumerate(values.items()):
                url = f"/v1/features/{feature}/variants/{variant}"
                ok(
                    admin.post(url, params={"make_default": position == 0}, json={"value": value}),
                    201,
                )
        ok(admin.post("/v1/features/legacy"), 201)
        ok(admin.post("/v1/features/legacy/disabling_variant", params={"make_default": True}), 201)
        yield process


def sdk_client(server: ServerProcess, token: str | None = CLIENT) -> OpenFeatureClient:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    provider = OFREPProvider(f"http://127.0.0.1:{server.port}", headers_factory=lambda: headers)
    domain = f"ofrep-{next(_domains)}"
    api.set_provider_and_wait(provider, domain)
    return api.get_client(domain)


def ctx(key: str | None) -> EvaluationContext:
    return EvaluationContext(targeting_key=key, attributes={"plan": "pro"})


def test_the_ofrep_provider_resolves_every_type(server: ServerProcess) -> None:
    client = sdk_client(server)
    one = ctx("1")
    assert client.get_boolean_value("dark", False, one) is True
    assert client.get_string_value("color", "", one) == "#00f"
    assert client.get_integer_value("retries", 0, one) == 3
    assert client.get_float_value("ratio", 0.0, one) == 0.25
    assert client.get_object_value("limits", {}, one) == {"max": 1}
    details = client.get_string_details("color", "", one)
    assert (details.reason, details.variant, details.error_code) == (Reason.STATIC, "blue", None)
    assert details.flag_metadata["subjectKnown"] is True
    disabled = client.get_boolean_details("legacy", True, one)
    assert (disabled.value, disabled.reason, disabled.variant) == (
        True, Reason.DISABLED, "__DISABLE__",
    )  # fmt: skip
    visitor = client.get_string_details("color", "x", ctx(str(uuid.uuid4())))
    assert (visitor.value, visitor.reason, visitor.error_code) == ("#00f", Reason.STATIC, None)
    assert visitor.flag_metadata["subjectKnown"] is False
    assert visitor.flag_metadata["keyHashed"] is True and visitor.flag_metadata["bucket"] in (1, 2)


def test_uuid_keys_are_split_by_their_bucket(server: ServerProcess) -> None:
    admin = server.client
    ok(admin.post("/v1/features/color/rollout", params={"variant": "red"}), 201)
    ok(admin.put("/v1/features/color/rollout", params={"proportion": 0.5}))
    rolled_out = set(ok(admin.get("/v1/features/color/rollout"))["buckets"])
    assert len(rolled_out) == 1
    client = sdk_client(server)
    seen = set()
    for _ in range(40):
        details = client.get_string_details("color", "x", ctx(str(uuid.uuid4())))
        in_rollout = details.flag_metadata["bucket"] in rolled_out
        assert (details.value, details.reason) == (
            ("#f00", Reason.SPLIT) if in_rollout else ("#00f", Reason.DEFAULT)
        )
        seen.add(details.value)
    assert seen == {"#00f", "#f00"}
    # A context that names a registered subject is bucketed by it (FLAGGERY_SUBJECT_ATTRIBUTE).
    subject_1 = ok(admin.get("/v1/subjects/1"))["bucket"]
    tenant = EvaluationContext(targeting_key=str(uuid.uuid4()), attributes={"subject": "1"})
    details = client.get_string_details("color", "x", tenant)
    assert details.flag_metadata["subjectKnown"] is True
    assert details.flag_metadata["bucket"] == subject_1


def test_the_ofrep_provider_reports_errors(server: ServerProcess) -> None:
    client = sdk_client(server)
    failures = [
        ("nope", ctx("1"), ErrorCode.FLAG_NOT_FOUND),
        ("color", ctx(None), ErrorCode.TARGETING_KEY_MISSING),
        ("color", None, ErrorCode.TARGETING_KEY_MISSING),  # the provider sends {}
        ("color", ctx("x" * 257), ErrorCode.INVALID_CONTEXT),
    ]
    for flag, context, code in failures:
        details = client.get_string_details(flag, "fallback", context)
        assert (details.value, details.error_code) == ("fallback", code), (flag, details)
    mismatch = client.get_integer_details("color", 5, ctx("1"))
    assert (mismatch.value, mismatch.error_code) == (5, ErrorCode.TYPE_MISMATCH)
    for token in (None, "wrong"):
        refused = sdk_client(server, token).get_string_details("color", "fallback", ctx("1"))
        assert (refused.value, refused.error_code) == ("fallback", ErrorCode.GENERAL)
        assert refused.error_message in ("unauthorized", "forbidden")


def test_bulk_etag_and_304(server: ServerProcess) -> None:
    headers = {"X-API-Key": CLIENT}
    with httpx.Client(base_url=str(server.client.base_url), headers=headers) as client:
        context = {"context": {"targetingKey": "1"}}
        first = client.post("/ofrep/v1/evaluate/flags", json=context)
        assert first.status_code == 200
        assert {f["key"] for f in first.json()["flags"]} == {
            "color", "dark", "legacy", "limits", "ratio", "retries",
        }  # fmt: skip
        etag = first.headers["etag"]
        again = client.post(
            "/ofrep/v1/evaluate/flags", json=context, headers={"If-None-Match": etag}
        )
        assert (again.status_code, again.content) == (304, b"")
        ok(server.client.put("/v1/features/color/variants/blue/value", json={"value": "navy"}))
        changed = client.post(
            "/ofrep/v1/evaluate/flags", json=context, headers={"If-None-Match": etag}
        )
        assert changed.status_code == 200
        assert {f["key"]: f.get("value") for f in changed.json()["flags"]}["color"] == "navy"


def test_the_event_stream_delivers_refetch_after_a_write(server: ServerProcess) -> None:
    events: list[dict[str, object]] = []
    connected = threading.Event()

    url = f"{server.client.base_url}/ofrep/v1/events"
    # The client role, like every OFREP route (docs/security.md, the role table).
    assert httpx.get(url, timeout=10).status_code == 401

    def listen() -> None:
        headers = {"X-API-Key": CLIENT}
        with (
            httpx.Client(timeout=10, headers=headers) as client,
            client.stream("GET", url) as response,
        ):
            assert response.headers["content-type"].startswith("text/event-stream")
            connected.set()
            for line in response.iter_lines():
                if line.startswith("data:"):
                    events.append(json.loads(line.removeprefix("data:").strip()))
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert connected.wait(10)
    revision = ok(server.client.get("/v1/revision"))["revision"]
    ok(server.client.put("/v1/features/dark/variants/no/value", json={"value": True}))
    listener.join(10)
    assert events and events[0]["type"] == "refetchEvaluation"
    assert int(str(events[0]["etag"])) > revision
    assert isinstance(events[0]["lastModified"], int)


def test_cors_preflight_from_another_origin(server: ServerProcess) -> None:
    with httpx.Client(base_url=str(server.client.base_url)) as browser:
        preflight = browser.options(
            "/ofrep/v1/evaluate/flags",
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        response = browser.post(
            "/ofrep/v1/evaluate/flags",
            json={"context": {"targetingKey": "2"}},
            headers={"Origin": ORIGIN, "Authorization": f"Bearer {CLIENT}"},
        )
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == ORIGIN
        refused = browser.options(
            "/ofrep/v1/evaluate/flags",
            headers={"Origin": "https://evil.test", "Access-Control-Request-Method": "POST"},
        )
        assert refused.status_code == 400


def test_an_open_event_stream_does_not_hold_shutdown(db_url: str, tmp_path: Path) -> None:
    with flaggery_process(["--db-url", db_url], tmp_path) as process:
        connected, ended = threading.Event(), threading.Event()

        def listen() -> None:
            url = f"{process.client.base_url}/ofrep/v1/events"
            with httpx.Client(timeout=30) as client, client.stream("GET", url) as response:
                connected.set()
                with contextlib.suppress(httpx.HTTPError):
                    for _ in response.iter_lines():
                        pass
            ended.set()

        threading.Thread(target=listen, daemon=True).start()
        assert connected.wait(10)
        started = time.monotonic()
        process.process.send_signal(signal.SIGTERM)
        assert process.process.wait(DRAIN_SECONDS + 5) == 0, process.log_path.read_text()
        assert time.monotonic() - started < DRAIN_SECONDS + 5
        assert ended.wait(5), "the stream should end when the server stops"
