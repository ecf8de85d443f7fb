"""The dashboard on an open loopback admin server (no token, so no sign-in) with two worker
processes: the session cookie that carries the CSRF token is signed with a key every worker
shares, so a form rendered by one worker is accepted by whichever answers its post."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.http.processes import flaggery_server

POSTS = 16


def test_a_form_posts_to_either_worker(db_url: str, tmp_path: Path) -> None:
    args = ["--admin", "--db-url", db_url, "--db-auto-upgrade", "--workers", "2"]
    with flaggery_server(args, tmp_path) as server:
        page = server.get("/ui/features")
        csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text)
        assert csrf, page.text
        for number in range(POSTS):
            # A new connection each time: the kernel hands it to either worker.
            with httpx.Client(base_url=server.base_url, cookies=server.cookies) as browser:
                form = {"csrf": csrf.group(1), "name": f"f{number}"}
                posted = browser.post("/ui/features", data=form, timeout=10)
                assert posted.status_code == 303, (number, posted.text[:300])
        listed = server.get("/v1/features").json()
        assert sorted(listed["features"]) == sorted(f"f{n}" for n in range(POSTS))
