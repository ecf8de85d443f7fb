"""The published OFREP provider for server JavaScript (``@openfeature/ofrep-provider`` with
``@openfeature/server-sdk``, pinned in tests/ofrep/js/package-lock.json), unchanged, against a
real ``flaggery`` process: UUID targeting keys hashed into buckets, a context in a rule group,
a registered subject, and OFREP's errors. SQLite and PostgreSQL.

Node 20 runs tests/ofrep/js/evaluate.mjs; ``npm ci --prefix tests/ofrep/js`` installs the
packages (.ci/run does). Without them the test is skipped, and fails under ``CI=true``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.http.helpers import ok
from tests.http.processes import ServerProcess, flaggery_process

pytestmark = pytest.mark.slow

JS = Path(__file__).parent / "js"
ADMIN = "admin-secret-for-the-js-provider-test"
CLIENT = "client-secret-for-the-js-provider-test"
DACH = {"rule": [[{"contextName": "country", "operator": "IN", "values": ["DE", "AT"]}]]}
REQUIRED = os.environ.get("CI") == "true"


def _require_node_packages() -> None:
    missing = shutil.which("node") is None or not (JS / "node_modules" / "@openfeature").is_dir()
    if missing:
        message = "Node or the JS OFREP provider is missing: npm ci --prefix tests/ofrep/js"
        if REQUIRED:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    _require_node_packages()
    env = {"FLAGGERY_ADMIN_TOKEN": ADMIN, "FLAGGERY_CLIENT_TOKENS": CLIENT}
    with flaggery_process(["--admin", "--db-url", db_url], tmp_path, env) as process:
        admin = process.client
        admin.headers["Authorization"] = f"Bearer {ADMIN}"
        ok(admin.put("/v1/buckets", params={"amount": 4}))
        ok(admin.post("/v1/subjects", json=[{"id": 1}, {"id": 2}]), 201)
        ok(admin.post("/v1/features/color"), 201)
        for position, (variant, value) in enumerate((("blue", "#00f"), ("red", "#f00"))):
            url = f"/v1/features/color/variants/{variant}"
            params = {"make_default": position == 0}
            ok(admin.post(url, params=params, json={"value": value}), 201)
        ok(admin.post("/v1/features/color/rollout", params={"variant": "red"}), 201)
        ok(admin.put("/v1/features/color/rollout", params={"proportion": 0.5}))
        ok(admin.post("/v1/groups/dach"), 201)
        ok(admin.put("/v1/groups/dach/rule", json=DACH))
        ok(admin.post("/v1/features/dark"), 201)
        for position, (variant, flag) in enumerate((("no", False), ("yes", True))):
            url = f"/v1/features/dark/variants/{variant}"
            params = {"make_default": position == 0}
            ok(admin.post(url, params=params, json={"value": flag}), 201)
        ok(admin.post("/v1/groups/dach/overrides/dark", params={"variant": "yes"}))
        yield process


def _evaluate(server: ServerProcess, requests: list[dict[str, object]]) -> list[dict[str, object]]:
    """The JS provider's evaluation details of each request, in order."""
    completed = subprocess.run(
        ["node", str(JS / "evaluate.mjs"), f"http://127.0.0.1:{server.port}", CLIENT],
        input=json.dumps(requests),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=JS,
    )
    assert completed.returncode == 0, completed.stderr
    details: list[dict[str, object]] = json.loads(completed.stdout)
    return details


def test_the_published_js_ofrep_provider_gets_hashed_keys_rules_and_errors(
    server: ServerProcess,
) -> None:
    keys = [str(uuid.UUID(int=index * 7919 + 1, version=4)) for index in range(16)]
    requests: list[dict[str, object]] = [
        {"flag": "color", "type": "string", "default": "x", "context": {"targetingKey": key}}
        for key in keys
    ]
    requests += [
        {
            "flag": "dark",
            "type": "boolean",
            "default": False,
            "context": {"targetingKey": keys[0], "country": "DE"},
        },
        {"flag": "dark", "type": "boolean", "default": True, "context": {"targetingKey": keys[0]}},
        {"flag": "color", "type": "string", "default": "x", "context": {"targetingKey": "1"}},
        {"flag": "nope", "type": "string", "default": "x", "context": {"targetingKey": "1"}},
        {"flag": "color", "type": "string", "default": "x", "context": {"country": "DE"}},
    ]
    details = _evaluate(server, requests)
    admin = server.client
    values = {"blue": "#00f", "red": "#f00"}
    seen = set()
    for key, found in zip(keys, details, strict=False):
        # What the REST key route (a different path through the server) says this key gets.
        variant = ok(admin.get(f"/v1/keys/{key}/flags"))["flags"]["color"]
        assert (found["value"], found["variant"]) == (values[variant], variant), (key, found)
        assert found["reason"] == ("SPLIT" if variant == "red" else "DEFAULT")
        metadata = found["flagMetadata"]
        assert isinstance(metadata, dict)
        assert (metadata["subjectKnown"], metadata["keyHashed"]) == (False, True)
        assert metadata["bucket"] in range(1, 5)
        seen.add(variant)
    assert seen == {"blue", "red"}  # 16 keys over 4 buckets, half of them rolled out
    in_group, outside, subject, missing, no_key = details[len(keys) :]
    assert (in_group["value"], in_group["variant"], in_group["reason"]) == (
        True, "yes", "TARGETING_MATCH",
    )  # fmt: skip
    assert (outside["value"], outside["variant"]) == (False, "no")
    subject_metadata = subject["flagMetadata"]
    assert isinstance(subject_metadata, dict) and subject_metadata["subjectKnown"] is True
    assert (missing["value"], missing["errorCode"]) == ("x", "FLAG_NOT_FOUND")
    assert (no_key["value"], no_key["errorCode"]) == ("x", "TARGETING_KEY_MISSING")
