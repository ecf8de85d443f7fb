"""GET /ui/stream, the dashboard's change stream, against a real server (SSE needs one), on
SQLite and PostgreSQL: only a signed-in session gets it (the cookie, no bearer token), a
reader's included; events carry the revision and no facts; it starts after ``after`` or
Last-Event-ID, from the in-memory backlog."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import httpx

from tests.http.processes import flaggery_server
from tests.http.sse import Event, events

TOKENS = "ops:admin:admin-secret\nrita:reader:reader-secret"
ADMIN = {"Authorization": "Bearer admin-secret"}


def _sign_in(client: httpx.Client, secret: str) -> None:
    page = client.get("/ui/signin")
    csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text)
    assert csrf, page.text
    signed = client.post("/ui/signin", data={"csrf": csrf.group(1), "token": secret})
    assert signed.status_code == 303, signed.text


def _take(response: httpx.Response, count: int) -> list[Event]:
    return list(itertools.islice(events(response), count))


def test_a_signed_in_reader_follows_the_changes(db_url: str, tmp_path: Path) -> None:
    env = {"FLAGGERY_TOKENS": TOKENS, "FLAGGERY_STREAM_KEEPALIVE": "0.2"}
    args = ["--admin", "--db-url", db_url, "--db-auto-upgrade"]
    with flaggery_server(args, tmp_path, env) as api:
        api.headers.update(ADMIN)
        api.post("/v1/features/f").raise_for_status()  # revision 1
        with httpx.Client(base_url=api.base_url, timeout=10) as browser:
            # A bearer token is not a session: the dashboard sends it to sign in.
            refused = browser.get("/ui/stream", headers=ADMIN)
            assert refused.status_code == 303 and refused.headers["location"] == "/ui/signin"
            _sign_in(browser, "reader-secret")
            with browser.stream("GET", "/ui/stream") as response:
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                api.post("/v1/features/f/variants/A").raise_for_status()  # 2
                (live,) = _take(response, 1)
            assert (live.id, live.event, live.data) == ("2", "change", ["2"])

            # A page rendered at revision 1 is told at once of what it missed.
            api.post("/v1/features/g").raise_for_status()  # 3
            with browser.stream("GET", "/ui/stream", params={"after": "1"}) as response:
                missed = _take(response, 2)
            assert [(e.id, e.data) for e in missed] == [("2", ["2"]), ("3", ["3"])]

            # An EventSource reconnecting names its last event; that wins over `after`.
            headers = {"Last-Event-ID": "2"}
            with browser.stream("GET", "/ui/stream?after=0", headers=headers) as response:
                (resumed,) = _take(response, 1)
            assert resumed.id == "3"
