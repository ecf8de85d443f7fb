"""The log lines that matter carry structured fields (flaggery.log_format): a bug names its
route, a failed catch-up its revision and actor."""

from __future__ import annotations

import logging

import pytest

from flaggery.store.repository import AsyncFlaggery
from tests.http.conftest import MakeClient


async def test_a_bug_logs_its_route(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*_: object) -> list[str]:
        raise ZeroDivisionError("secret internals")

    monkeypatch.setattr(AsyncFlaggery, "list_features", broken)
    client = await make_client(raise_app_exceptions=False)
    with caplog.at_level(logging.ERROR, logger="flaggery.http.errors"):
        assert (await client.get("/v1/features")).status_code == 500
    (record,) = [r for r in caplog.records if r.name == "flaggery.http.errors"]
    assert record.route == "/v1/features"  # type: ignore[attr-defined]
    assert record.getMessage().startswith("Internal error answering GET /v1/features")
