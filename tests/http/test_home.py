"""What a browser meets first: ``GET /`` and the server's start-up log.

``GET /`` sends an admin server's visitors to the dashboard, a read-only server's to the API
reference (it has no dashboard), and is a 404 when neither is served. The start-up log names
the dashboard's URL and warns when the admin API is open without a token.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from flaggery.http.startup import base_url, log_startup
from flaggery.settings import Settings
from tests.http.conftest import MakeClient
from tests.http.processes import flaggery_process


@pytest.mark.parametrize(
    ("options", "location"),
    [
        ({}, "/ui/"),
        ({"admin_mode": False}, "/docs"),
        ({"admin_mode": False, "enable_docs": False}, None),
    ],
    ids=["admin", "read-only", "read-only-without-docs"],
)
async def test_the_root_sends_a_browser_where_there_is_something_to_see(
    make_client: MakeClient, options: dict[str, bool], location: str | None
) -> None:
    client = await make_client(**options)
    for method in ("GET", "HEAD"):
        response = await client.request(method, "/")
        if location is None:
            assert response.status_code == 404
        else:
            assert (response.status_code, response.headers["location"]) == (307, location)
            assert (await client.get(location)).status_code in (200, 303)


def test_a_real_admin_server_logs_its_dashboard_and_warns_when_open(tmp_path: Path) -> None:
    with flaggery_process(["--admin"], cwd=tmp_path) as server:
        response = server.client.get("/")  # through flaggery's own HTTP protocol
        assert (response.status_code, response.headers["location"]) == (307, "/ui/")
        assert server.client.get("/ui/", follow_redirects=True).status_code == 200
        log = server.log_path.read_text()
    url = f"http://127.0.0.1:{server.port}"
    assert f"Dashboard: {url}/ui/" in log
    assert f"API reference: {url}/docs" in log
    # flaggery.log_format: "<UTC time> <LEVEL> <logger>: <message>"
    warnings = [line for line in log.splitlines() if line.split(" ", 2)[1:2] == ["WARNING"]]
    assert len(warnings) == 1, log
    assert "admin API and the dashboard are open" in warnings[0]
    assert "FLAGGERY_TOKENS" in warnings[0]


def test_no_warning_once_a_token_is_required(tmp_path: Path) -> None:
    env = {"FLAGGERY_ADMIN_TOKEN": "a-long-random-secret"}
    with flaggery_process(["--admin"], cwd=tmp_path, env=env) as server:
        log = server.log_path.read_text()
    assert f"Dashboard: http://127.0.0.1:{server.port}/ui/" in log
    assert "WARNING" not in log
    assert "a-long-random-secret" not in log


def test_a_read_only_server_says_it_has_no_dashboard(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="flaggery")
    log_startup(Settings(host="::1", port=8001, enable_docs=False))
    assert [record.getMessage() for record in caplog.records] == [
        "Read-only server: flags at http://[::1]:8001/v1/subjects/{id}/flags; the dashboard "
        "is served by the admin server (flaggery --admin)."
    ]
    assert base_url(Settings(host="0.0.0.0", port=80)) == "http://0.0.0.0:80"
