"""The server's log lines: time and logger name on every line; FLAGGERY_LOG_FORMAT=json gives one
JSON object a line with the structured fields (revision, route, actor) where a line has them."""

from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path

import pytest

from flaggery.log_format import JsonFormatter, TextFormatter
from tests.http.processes import flaggery_process

TEXT_LINE = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: "
)


def _record(name: str, message: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord(name, logging.WARNING, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    return record


def test_a_text_line_has_time_level_logger_message_and_fields() -> None:
    line = TextFormatter().format(
        _record("flaggery.store.replica", "Full reload after %s", 41, revision=41, actor="ops")
    )
    assert TEXT_LINE.match(line), line
    assert line.endswith(
        "WARNING flaggery.store.replica: Full reload after 41 revision=41 actor=ops"
    )


def test_a_json_line_has_the_fields_and_the_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = _record("flaggery.ofrep.app", "OFREP request %s failed", "/x", route="/x")
        record.exc_info = sys.exc_info()
    entry = json.loads(JsonFormatter().format(record))
    assert entry["logger"] == "flaggery.ofrep.app" and entry["level"] == "WARNING"
    assert entry["message"] == "OFREP request /x failed" and entry["route"] == "/x"
    assert entry["time"].endswith("Z") and "ValueError: boom" in entry["exception"]


def test_an_access_line_carries_its_route_and_status() -> None:
    args = ("127.0.0.1:5000", "GET", "/v1/features", "1.1", 200)
    record = _record("uvicorn.access", '%s - "%s %s HTTP/%s" %d', *args)
    entry = json.loads(JsonFormatter().format(record))
    assert (entry["method"], entry["route"], entry["status"]) == ("GET", "/v1/features", 200)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_every_line_of_a_real_server(log_format: str, tmp_path: Path) -> None:
    """uvicorn's lines, the access log and flaggery's own, from the `flaggery` command. The
    admin token comes from a file: by flag for one format, by variable for the other (the
    workers then get the value, not both)."""
    token = tmp_path / "admin-token"
    token.write_text("a-long-admin-secret\n")
    args = ["--admin", "--access-log", "--log-format", log_format]
    env = {}
    if log_format == "json":
        args += ["--admin-token-file", str(token)]
    else:
        env["FLAGGERY_ADMIN_TOKEN_FILE"] = str(token)
    with flaggery_process(args, tmp_path, env) as server:
        headers = {"Authorization": "Bearer a-long-admin-secret"}
        assert server.client.post("/v1/features/checkout", headers=headers).status_code == 201
        assert server.client.post("/v1/features/other").status_code == 401
        server.process.terminate()
        server.process.wait(15)
        lines = server.log_path.read_text().splitlines()
    assert lines
    if log_format == "text":
        assert all(TEXT_LINE.match(line) for line in lines), lines
        return
    entries = [json.loads(line) for line in lines]
    assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in entries)
    loggers = {entry["logger"] for entry in entries}
    assert {"uvicorn.error", "uvicorn.access"} <= loggers, loggers
    routes = {(e.get("route"), e.get("status")) for e in entries if e["logger"] == "uvicorn.access"}
    assert {("/v1/features/checkout", 201), ("/v1/features/other", 401)} <= routes
