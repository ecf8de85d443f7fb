"""Headless Chromium from the system package, driven by Playwright (no browser download), and
a `flaggery` server process for it to talk to. Shared by the browser tests and the dashboard
page's screenshots (`python -m tests.ui.screenshots`)."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

from tests.http.processes import ServerProcess, flaggery_process

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# The network is closed: nothing may phone home or wait for it.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PM_TOKEN = "pm-secret-token-1"
# A second admin, for writes made through the API while the browser watches (its name is the
# actor History shows).
BOT_TOKEN = "bot-secret-token-1"
TOKENS = f"pm:admin:{PM_TOKEN}\nrelease-bot:admin:{BOT_TOKEN}"


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium (the system's), closed at the end."""
    assert CHROMIUM is not None, "apt-get install chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def empty_admin_server(db_url: str, directory: Path) -> Iterator[ServerProcess]:
    """``flaggery --admin`` on ``db_url`` with admin tokens "pm" and "release-bot", ready,
    with pm's bearer header on its client; nothing added."""
    env = {"FLAGGERY_TOKENS": TOKENS, "FLAGGERY_DB_AUTO_UPGRADE": "true"}
    with flaggery_process(["--admin", "--db-url", db_url], directory, env) as server:
        server.client.headers["Authorization"] = f"Bearer {PM_TOKEN}"
        yield server


@contextlib.contextmanager
def admin_server(db_url: str, directory: Path) -> Iterator[ServerProcess]:
    """`empty_admin_server` with 20 buckets and 500 subjects added through the REST API."""
    with empty_admin_server(db_url, directory) as server:
        server.client.put("/v1/buckets", params={"amount": 20}).raise_for_status()
        subjects = [{"id": i, "weight": 1 + i % 9} for i in range(500)]
        server.client.post("/v1/subjects", json=subjects).raise_for_status()
        yield server
