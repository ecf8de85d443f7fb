"""Issue 13's workflow in a real browser (headless Chromium, Playwright), on SQLite and
PostgreSQL: sign in, create a feature with two variants, set the default, raise a rollout to
30% and see the effective share previewed and applied, create an A/B test that starts now
and stop it, look up a subject and read why, see it all in History under the actor's name
and a write made through the API appear there live (no reload), a post without the CSRF token
refused, and a markup name shown as text."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Dialog, Page, expect

from tests.ui.browser import BOT_TOKEN, CHROMIUM, PM_TOKEN, admin_server, chromium

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="apt-get install chromium"),
    pytest.mark.slow(seconds=12),
]
XSS = "<img src=x onerror=alert(1)>"


def test_the_product_workflow_in_a_browser(db_url: str, tmp_path: Path) -> None:
    with admin_server(db_url, tmp_path) as server, chromium() as browser:
        page = browser.new_page(base_url=str(server.client.base_url))
        page.set_default_timeout(10_000)
        alerts: list[str] = []
        page.on("dialog", lambda dialog: _record(alerts, dialog))
        sign_in(page)
        create_feature(page)
        raise_rollout(page)
        run_abtest(page)
        read_why(page)
        read_history(page)
        history_updates_live(page, server.client)
        csrf_less_post_is_refused(page)
        markup_name_is_text(page)
        assert alerts == []


def _record(alerts: list[str], dialog: Dialog) -> None:
    alerts.append(dialog.message)
    dialog.dismiss()


def sign_in(page: Page) -> None:
    page.goto("/ui/features")
    expect(page).to_have_url(re.compile("/ui/signin$"))
    page.get_by_label("Token").fill(PM_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Features")).to_be_visible()
    expect(page.locator(".who")).to_contain_text("pm")


def create_feature(page: Page) -> None:
    page.get_by_label("New feature").fill("checkout")
    page.get_by_role("button", name="Add feature").click()
    expect(page.get_by_role("heading", name="checkout")).to_be_visible()
    for variant in ("old", "new"):
        page.get_by_label("New variant").fill(variant)
        page.get_by_role("button", name="Add variant").click()
    row = page.locator("#variants tr", has_text="old")
    row.get_by_role("button", name="Make default").click()
    expect(page.locator("#variants tr", has_text="old")).to_contain_text("default")


def raise_rollout(page: Page) -> None:
    page.locator("form[action$='/rollout'] select[name=variant]").select_option("new")
    page.get_by_label("Proportion (%)").fill("30")
    preview = page.locator("#preview")
    expect(preview).to_contain_text("Lands on")
    share = re.search(r"Lands on ([\d.]+%)", preview.inner_text())
    assert share
    page.get_by_role("button", name="Apply rollout").click()
    expect(page.locator("#effective")).to_have_text(share.group(1))


def run_abtest(page: Page) -> None:
    page.goto("/ui/abtests")
    page.get_by_label("Test name").fill("checkout-test")
    for group, variant in enumerate(("old", "new")):
        page.locator(f"input[name='g{group}.name']").fill(("control", "treatment")[group])
        page.locator(f"input[name='g{group}.f0']").fill("checkout")
        page.locator(f"input[name='g{group}.v0']").fill(variant)
    page.get_by_role("button", name="Add a group").click()  # htmx: the form, one group more
    expect(page.locator("fieldset.group")).to_have_count(3)
    expect(page.locator("input[name='g1.v0']")).to_have_value("new")  # typed values stay
    page.get_by_label("End (UTC").fill("2099-01-01T00:00:00")
    page.get_by_role("button", name="Create test").click()
    live = page.locator("section", has=page.locator(".badge.live"))
    expect(live).to_contain_text("checkout-test")
    live.get_by_role("button", name="Stop test").click()
    expect(page.locator("#confirm h1")).to_have_text("Stop checkout-test?")
    page.get_by_role("button", name="Stop checkout-test").click()
    ended = page.locator("section", has=page.locator(".badge.ended"))
    expect(ended).to_contain_text("checkout-test")


def read_why(page: Page) -> None:
    page.goto("/ui/subjects")
    page.get_by_label("Subject id").fill("7")
    page.get_by_role("button", name="Look up").click()
    why = page.locator("tr", has_text="checkout").locator(".why")
    expect(why).to_have_text(re.compile(r"the feature's default|in the rollout \(30\.0%\)"))


def read_history(page: Page) -> None:
    page.goto("/ui/history?feature=checkout")
    rows = page.locator("#history tr")
    for operation in ("stop_abtest", "add_abtest", "add_rollout", "add_variant", "add_feature"):
        expect(rows.filter(has_text=operation).first).to_contain_text("pm")


def history_updates_live(page: Page, api: httpx.Client) -> None:
    """Writes made elsewhere (the REST API, another token) while History is open appear
    without a reload, within the page's filter, under their actor's name."""
    page.goto("/ui/history?feature=checkout")
    expect(page.locator("#history tr").first).to_contain_text("stop_abtest")
    loads: list[str] = []
    page.on("load", lambda loaded: loads.append(loaded.url))
    bot = {"Authorization": f"Bearer {BOT_TOKEN}"}
    api.post("/v1/features/unrelated", headers=bot).raise_for_status()
    api.post("/v1/features/checkout/variants/newer", headers=bot).raise_for_status()
    newest = page.locator("#history tr").first
    expect(newest).to_contain_text("add_variant", timeout=15_000)
    expect(newest).to_contain_text("release-bot")
    expect(page.locator("#history")).not_to_contain_text("unrelated")
    assert loads == []


def csrf_less_post_is_refused(page: Page) -> None:
    response = page.request.post("/ui/features", form={"name": "sneaky"})
    assert response.status == 403
    page.goto("/ui/features?q=sneaky")
    expect(page.locator("tbody")).to_contain_text("No features")


def markup_name_is_text(page: Page) -> None:
    page.goto("/ui/features")
    page.get_by_label("New feature").fill(XSS)
    page.get_by_role("button", name="Add feature").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(XSS)
    assert page.locator("main img").count() == 0
    page.goto("/ui/features")
    expect(page.locator("tbody")).to_contain_text(XSS)
    assert page.locator("main img").count() == 0
