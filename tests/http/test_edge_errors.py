"""An edge's upstream errors as real processes (issue: new-user trial, item 2): a refused token
is one ERROR line without traceback and an UpstreamUnavailable 503 (on /readyz and serving), not
DatabaseUnavailable; an upstream outage is logged once per reason, not once per retry, and its
end once at INFO."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.http.helpers import fails
from tests.http.processes import flaggery_command, flaggery_process, free_port, wait_for

TOKENS = "ops:admin:admin-secret edge:reader:reader-secret"


@contextlib.contextmanager
def _unready_edge(upstream: str, cwd: Path, env: dict[str, str]) -> Iterator[httpx.Client]:
    """An edge process that answers HTTP but may never become ready; debug logging."""
    port = free_port()
    log_path = cwd / f"edge-{port}.log"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLAGGERY_")}
    args = ["--upstream", upstream, "--port", str(port), "--log-level", "debug"]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [*flaggery_command(), *args],
            env={**clean, **env},
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client
    finally:
        process.terminate()
        process.wait(15)


def _lines(path: Path, level: str, text: str) -> int:
    """Lines of `path` logged at `level` that contain `text` (flaggery.log_format's text
    lines: time, level, logger, message)."""
    return sum(
        1
        for line in path.read_text().splitlines()
        if line.split(" ", 2)[1:2] == [level] and text in line
    )


def _answers(client: httpx.Client, path: str) -> bool:
    with contextlib.suppress(httpx.TransportError):
        client.get(path)
        return True
    return False


@pytest.mark.slow
@pytest.mark.parametrize(
    ("edge_env", "problem"),
    [
        ({}, "no token was sent"),
        (
            {"FLAGGERY_UPSTREAM_TOKEN": "wrong", "FLAGGERY_TOKENS": "below:reader:s"},
            "the token is not one of its tokens",
        ),
    ],
)
def test_a_refused_upstream_token(tmp_path: Path, edge_env: dict[str, str], problem: str) -> None:
    with flaggery_process(["--admin"], tmp_path, {"FLAGGERY_TOKENS": TOKENS}) as upstream:
        url = str(upstream.client.base_url)
        with _unready_edge(url, tmp_path, edge_env) as edge:
            wait_for(lambda: _answers(edge, "/healthz"), 30)
            message = fails(edge.get("/readyz"), 503, "UpstreamUnavailable")
            assert problem in message and "FLAGGERY_UPSTREAM_TOKEN" in message
            flags = fails(edge.get("/v1/subjects/1/flags"), 503, "UpstreamUnavailable")
            assert problem in flags
            (log,) = tmp_path.glob("edge-*.log")
            # The first retry comes 2.5-5 s later (flaggery.live.backoff.REFUSED).
            wait_for(lambda: _lines(log, "DEBUG", "No snapshot yet") >= 1, 20)
            text = log.read_text()
            assert _lines(log, "ERROR", f"refused this edge (401: {problem})") == 1, text
            assert "Traceback" not in text and " WARNING " not in text, text


@pytest.mark.slow
def test_an_upstream_outage_is_logged_once_and_its_end_too(db_url: str, tmp_path: Path) -> None:
    admin_args = ["--admin", "--db-url", db_url, "--db-auto-upgrade"]
    with contextlib.ExitStack() as stack:
        admin = stack.enter_context(flaggery_process(admin_args, tmp_path))
        url = str(admin.client.base_url)
        edge = stack.enter_context(
            flaggery_process(["--upstream", url, "--log-level", "debug"], tmp_path)
        )
        admin.process.terminate()
        admin.process.wait(15)
        # Retries come every 1-2 s at most: wait for several, logged at debug.
        wait_for(lambda: _lines(edge.log_path, "DEBUG", "Lost the upstream") >= 3, 30)
        # One line when the outage starts (the stream cut), one when its reason changed (the
        # connection refused); none for the repeats.
        warnings = _lines(edge.log_path, "WARNING", "Lost the upstream")
        assert 1 <= warnings <= 2, edge.log_path.read_text()
        assert edge.client.get("/readyz").json()["stale"]

        stack.enter_context(flaggery_process(admin_args, tmp_path, port=admin.port))
        wait_for(lambda: not edge.client.get("/readyz").json()["stale"], 15)
        time.sleep(0.5)
        text = edge.log_path.read_text()
        assert _lines(edge.log_path, "INFO", "Following the upstream") == 1, text
        assert _lines(edge.log_path, "WARNING", "Lost the upstream") == warnings, text
