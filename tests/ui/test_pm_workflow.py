"""Issue 21's done-when: a product manager runs the whole flag workflow from an empty database
without leaving the browser (headless system Chromium, Playwright), on SQLite and PostgreSQL:
buckets, subjects by paste, a feature off by default, variants with values, a 10% rollout raised
to 50%, a group by paste with an override, an A/B test, the feature page showing the test's
precedence, a revert of the rollout from History, and stopping the test with its effect named
first."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.ui.browser import CHROMIUM, PM_TOKEN, chromium, empty_admin_server

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="apt-get install chromium"),
    pytest.mark.slow(seconds=15),
]
SUBJECTS = 300


def test_a_pm_sets_up_and_runs_a_flag_alone(db_url: str, tmp_path: Path) -> None:
    with empty_admin_server(db_url, tmp_path) as server, chromium() as browser:
        page = browser.new_page(base_url=str(server.client.base_url))
        page.set_default_timeout(10_000)
        sign_in(page)
        add_buckets(page)
        paste_subjects(page)
        feature_off_by_default_with_values(page)
        rollout_10_then_50(page)
        group_by_paste_with_override(page)
        start_abtest(page)
        feature_page_shows_the_test_first(page)
        revert_the_rollout_from_history(page)
        stop_test_with_its_effect_named(page)
        for subject in (1, 2, 3):  # the override outlives the test
            flags = server.client.get(f"/v1/subjects/{subject}/flags").json()["flags"]
            assert flags == {"checkout": "new_flow"}


def sign_in(page: Page) -> None:
    page.goto("/ui/signin")
    page.get_by_label("Token").fill(PM_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Features")).to_be_visible()


def add_buckets(page: Page) -> None:
    page.get_by_role("link", name="Buckets").click()
    expect(page.get_by_label("Buckets to add")).to_have_value("10")  # the seed's guidance
    page.get_by_role("button", name="Add buckets").click()
    expect(page.locator("dl.facts")).to_contain_text("Buckets10")


def paste_subjects(page: Page) -> None:
    page.get_by_role("link", name="Subjects").click()
    ids = "\n".join(str(i) for i in range(1, SUBJECTS + 1))
    page.locator("textarea[name=ids]").fill(ids)
    page.get_by_role("button", name="Preview subjects").click()
    expect(page.locator("#confirm h1")).to_have_text(f"Add {SUBJECTS} subjects?")
    page.get_by_role("button", name=f"Add {SUBJECTS} subjects").click()
    expect(page.locator("#subject-list h2")).to_have_text(f"All subjects ({SUBJECTS})")


def feature_off_by_default_with_values(page: Page) -> None:
    page.get_by_role("link", name="Features").click()
    page.get_by_label("New feature").fill("checkout")
    page.get_by_role("button", name="Add feature").click()
    expect(page.get_by_role("heading", name="checkout")).to_be_visible()
    off = page.locator("#variants tr", has_text="Off (disabled)")
    off.get_by_role("button", name="Make default").click()
    expect(off).to_contain_text("default")
    for variant in ("old", "new_flow"):
        page.get_by_label("New variant").fill(variant)
        page.get_by_role("button", name="Add variant").click()
    form = page.locator("form[action$='/value']")
    form.get_by_label("Variant to give a value").select_option("new_flow")
    form.get_by_label("Type").select_option("object")
    form.get_by_label("Value", exact=True).fill('{"steps": 1}')
    form.get_by_role("button", name="Set value").click()
    expect(page.locator("#variants tr", has_text="new_flow")).to_contain_text('{"steps":1}')
    expect(page.locator("#story")).to_contain_text(f"serves {SUBJECTS} subjects (100.0%)")


def rollout_10_then_50(page: Page) -> None:
    form = page.locator("form[action$='/rollout']")
    form.locator("select[name=variant]").select_option("new_flow")
    for percent in ("10", "50"):
        form.get_by_label("Proportion (%)").fill(percent)
        expect(page.locator("#preview")).to_contain_text("Lands on")
        form.get_by_role("button", name="Apply rollout").click()
        rollout = page.locator("#story li", has_text="Rollout:")
        expect(rollout).to_contain_text(f"holds {percent}.0% of the weight")
        # The new page's text shows before its scripts bind the preview to the input: typing
        # the next percent then would fire no preview (seen once in CI).
        page.wait_for_load_state("load")
    served = re.search(r"serves (\d+) subjects", rollout.inner_text())
    assert served and 0.4 * SUBJECTS <= int(served.group(1)) <= 0.6 * SUBJECTS


def group_by_paste_with_override(page: Page) -> None:
    page.get_by_role("link", name="Groups").click()
    page.get_by_label("New group").fill("beta-testers")
    page.get_by_role("button", name="Add group").click()
    page.locator("textarea[name=members]").fill("1, 2, 3")
    page.get_by_role("button", name="Preview members").click()
    expect(page.locator("#confirm h1")).to_have_text("Add 3 subjects to group beta-testers?")
    page.get_by_role("button", name="Add 3 subjects to group beta-testers").click()
    expect(page.get_by_role("heading", name="Members (3)")).to_be_visible()
    form = page.locator("form[action$='/overrides']")
    form.get_by_label("Feature").fill("checkout")
    form.get_by_label("Variant").fill("new_flow")
    form.get_by_role("button", name="Add override").click()
    expect(page.locator("tr", has_text="checkout")).to_contain_text("new_flow")


def start_abtest(page: Page) -> None:
    page.get_by_role("link", name="A/B tests").click()
    page.get_by_label("Test name").fill("checkout-ab")
    expect(page.locator("input[name='g0.name']")).to_have_value("control")  # filled, not grey
    for group, variant in enumerate(("old", "new_flow")):
        page.locator(f"input[name='g{group}.f0']").fill("checkout")
        page.locator(f"input[name='g{group}.v0']").fill(variant)
    page.get_by_label("End (UTC").fill("2099-01-01 00:00")
    page.get_by_role("button", name="Create test").click()
    expect(page.locator("section", has=page.locator(".badge.live"))).to_contain_text("checkout-ab")


def feature_page_shows_the_test_first(page: Page) -> None:
    page.goto("/ui/features/checkout")
    story = page.locator("#story")
    expect(story.locator("li", has_text="Rollout:")).to_contain_text("serves 0 subjects")
    expect(story.locator("li", has_text="A/B test checkout-ab")).to_contain_text("live")
    expect(story.locator("li", has_text="Override:")).to_contain_text("serves 3 subjects")
    expect(page.locator("#reach")).to_contain_text("A/B test checkout-ab, group control")
    page.goto("/ui/features")
    expect(page.locator("tr", has_text="checkout")).to_contain_text("0.0% of subjects")


def revert_the_rollout_from_history(page: Page) -> None:
    """The 10% -> 50% change, reverted from History after a preview: back to 10%."""
    page.goto("/ui/features/checkout")
    page.locator("a.history-link").first.click()
    raised = page.locator("#history tr", has_text=re.compile(r"Rollout of checkout: .*-> 50"))
    raised.locator("a.revert").click()
    expect(page.locator("#revert-preview")).to_contain_text("10")
    page.locator("form.revert button").click()
    expect(page.locator("#history tr").first).to_contain_text("pm")
    page.goto("/ui/features/checkout")
    rollout = page.locator("#story li", has_text="Rollout:")
    expect(rollout).to_contain_text("holds 10.0% of the weight")


def stop_test_with_its_effect_named(page: Page) -> None:
    page.get_by_role("link", name="A/B tests").click()
    live = page.locator("section", has=page.locator(".badge.live"))
    live.get_by_role("button", name="Stop test").click()
    expect(page.locator("#confirm h1")).to_have_text("Stop checkout-ab?")
    effect = page.locator("#confirm .effect")
    expect(effect).to_contain_text("to new_flow (the rollout)")
    expect(effect).to_contain_text("checkout goes from old (A/B test checkout-ab, group control)")
    page.get_by_role("button", name="Stop checkout-ab").click()
    ended = page.locator("section", has=page.locator(".badge.ended"))
    expect(ended).to_contain_text("checkout-ab")
