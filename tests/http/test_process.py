"""Real ``flaggery`` processes: an admin server and a read-only replica sharing PostgreSQL,
several workers with Prometheus, the default SQLite file, the docs page in headless Chromium,
and schemathesis fuzzing the OpenAPI document against a live server."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.http.helpers import fails, ok
from tests.http.processes import flaggery_process, flaggery_server, wait_for

pytestmark = pytest.mark.slow

TOKEN = "process-test-token"
FLAGS_SERIES = re.compile(
    r'^flaggery_http_requests_total\{method="GET",'
    r'route="/v1/subjects/\{subject_id\}/flags",status="200"\} ([\d.]+)$',
    re.M,
)


def _flags(client: httpx.Client, subject_id: int) -> dict[str, str]:
    body: dict[str, str] = ok(client.get(f"/v1/subjects/{subject_id}/flags"))["flags"]
    return body


def test_admin_and_replica_share_postgres(clean_postgres: str, tmp_path: Path) -> None:
    admin_args = ["--admin", "--db-url", clean_postgres, "--workers", "2", "--prometheus"]
    with flaggery_server(admin_args, tmp_path, {"FLAGGERY_ADMIN_TOKEN": TOKEN}) as admin:
        fails(admin.put("/v1/buckets", params={"amount": 4}), 401, "Unauthorized")
        admin.headers["Authorization"] = f"Bearer {TOKEN}"
        ok(admin.put("/v1/buckets", params={"amount": 4}))
        subjects = [{"id": i, "weight": 1 + i % 3} for i in range(1, 101)]
        assert ok(admin.post("/v1/subjects", json=subjects), 201)["added"] == 100
        ok(admin.post("/v1/features/checkout"), 201)
        ok(admin.post("/v1/features/checkout/variants/A", params={"make_default": True}), 201)
        # Two workers: the other one catches up through NOTIFY, not through the write.
        wait_for(lambda: _flags(admin, 7) == {"checkout": "A"})

        with flaggery_server(["--db-url", clean_postgres], tmp_path) as replica:
            assert _flags(replica, 7) == {"checkout": "A"}
            fails(replica.get("/v1/features"), 423, "NotAdmin")
            fails(replica.post("/v1/features/other"), 423, "NotAdmin")
            fails(replica.put("/v1/subjects/7", params={"weight": 2}), 423, "NotAdmin")
            ok(admin.post("/v1/features/checkout/variants/B"), 201)
            ok(admin.put("/v1/features/checkout/default_variant/B"))
            wait_for(lambda: _flags(replica, 7) == {"checkout": "B"})
            assert ok(replica.get("/v1/subjects/7"))["weight"] == 2

        served = sum(_flags(admin, i) == {"checkout": "B"} for i in range(1, 51))
        assert served == 50
        # Every worker flushes its tally within a second; the scrape sums all workers.
        time.sleep(1.5)
        text = admin.get("/metrics").text
        assert float(FLAGS_SERIES.search(text).group(1)) >= 50  # type: ignore[union-attr]
        assert "flaggery_snapshot_subjects 100.0" in text


@pytest.fixture(scope="module")
def sqlite_server() -> Iterator[tuple[httpx.Client, Path]]:
    """``flaggery --admin`` with nothing configured, in an empty directory."""
    with (
        tempfile.TemporaryDirectory() as directory,
        flaggery_server(["--admin"], Path(directory)) as client,
    ):
        yield client, Path(directory)


def test_default_database_is_a_migrated_sqlite_file(
    sqlite_server: tuple[httpx.Client, Path],
) -> None:
    client, directory = sqlite_server
    assert (directory / "flaggery.db").exists()
    ok(client.post("/v1/features/default_db"), 201)
    assert "default_db" in ok(client.get("/v1/features"))["features"]


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_docs_page_renders_every_operation(
    sqlite_server: tuple[httpx.Client, Path], tmp_path: Path
) -> None:
    client, _ = sqlite_server
    assert CHROMIUM is not None
    command = [
        *(CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic"),
        *("--no-first-run", "--disable-background-networking", "--disable-component-update"),
        *("--disable-sync", f"--user-data-dir={tmp_path / 'profile'}"),
        # Anything not on loopback goes to a dead proxy: the page must need no network.
        *("--proxy-server=http://127.0.0.1:9", "--virtual-time-budget=15000"),
        *("--dump-dom", f"{client.base_url}/docs"),
    ]
    dom = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True).stdout
    rendered = set(re.findall(r'class="opblock-summary-path" data-path="([^"]+)"', dom))
    document = ok(client.get("/openapi.json"))
    assert rendered == set(document["paths"])
    assert "/v1/subjects/{subject_id}/flags" in rendered


# The operations in two halves of about the same cost: run whole, the fuzzing took about a
# minute on a quiet 2-core machine, the tail of the whole test run; halves run side by side.
FEATURES_AND_GROUPS = "^/v1/(features|groups)(/|$)"
HALVES = {
    "features-and-groups": ("--include-path-regex", FEATURES_AND_GROUPS),
    "the-rest": ("--exclude-path-regex", FEATURES_AND_GROUPS),
}


@pytest.mark.slow(seconds=30)
@pytest.mark.parametrize("half", HALVES.values(), ids=HALVES.keys())
def test_schemathesis_finds_no_failure(
    sqlite_server: tuple[httpx.Client, Path], half: tuple[str, str]
) -> None:
    """Fuzz every operation from the OpenAPI document: no 500, every response conforms.

    Two checks are off. positive_data_acceptance: 0.2.1 answers state conflicts with 400.
    ensure_resource_availability (ST302): its stateful phase infers that creating a feature
    creates the feature's rollout, which is a separate resource (POST .../rollout).
    GET /v1/stream is left out: it never ends (tests/http/test_stream.py covers it)."""
    client, directory = sqlite_server
    st = shutil.which("st") or shutil.which("schemathesis")
    if st is None:
        pytest.skip("schemathesis is not installed")
    ok(client.put("/v1/buckets", params={"amount": 4}))
    result = subprocess.run(
        [
            *(st, "run", f"{client.base_url}/openapi.json", "--checks", "all"),
            *("--exclude-checks", "positive_data_acceptance,ensure_resource_availability"),
            *("--max-examples", "8"),
            *("--exclude-path", "/v1/stream", *half),
            *("--seed", "4", "--no-color"),
        ],
        capture_output=True,
        text=True,
        timeout=150,
        cwd=directory,  # its example database stays out of the work tree
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert "Tested: 0" not in result.stdout, result.stdout[-5000:]


def test_db_upgrade_command(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'upgraded.db'}"
    result = subprocess.run(
        [sys.executable, "-m", "flaggery.cli", "db", "upgrade", "--db-url", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "migrated from schema revision none (empty) to " in result.stdout
    assert (tmp_path / "upgraded.db").stat().st_size > 0


def test_refuses_an_open_admin_server(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "flaggery.cli", "--admin", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "FLAGGERY_ADMIN_TOKEN" in result.stderr
    assert not (tmp_path / "flaggery.db").exists()


def test_the_admin_token_never_reaches_the_log(tmp_path: Path) -> None:
    """Even at debug level with the access log on, the token and the Authorization header
    stay out of the server's output: on start, on success, on a wrong token, on a bug path."""
    args = ["--admin", "--log-level", "debug", "--access-log"]
    with flaggery_process(args, tmp_path, {"FLAGGERY_ADMIN_TOKEN": TOKEN}) as server:
        client = server.client
        fails(client.put("/v1/buckets", params={"amount": 1}, headers=_bearer("wrong")), 401,
              "Unauthorized")  # fmt: skip
        ok(client.put("/v1/buckets", params={"amount": 1}, headers=_bearer(TOKEN)))
        fails(client.get("/v1/features/nope", headers=_bearer(TOKEN)), 404, "FeatureNotFound")
        server.process.terminate()
        server.process.wait(15)
        log = server.log_path.read_text()
    assert "PUT /v1/buckets" in log  # the access log did record the requests
    assert TOKEN not in log and "wrong" not in log and "Bearer" not in log


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
