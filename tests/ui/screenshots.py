"""Regenerate the dashboard screenshots in docs/ui/ (docs/dashboard.md shows them):

    python -m tests.ui.screenshots

Starts ``flaggery --admin`` on a scratch SQLite file, adds a small catalogue through the REST
API, signs in as "pm" in headless Chromium and saves each page at 1280 x 800 (and the
feature page at phone width, 390 x 844, the new-A/B-test form on its own, and the page
confirming a test's stop with its effect). Viewport
only, so the PNGs stay small.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.ui.browser import PM_TOKEN, admin_server, chromium

OUT = Path(__file__).resolve().parents[2] / "docs" / "ui"
PAGES = {
    "features": "/ui/features",
    "feature": "/ui/features/checkout",
    "feature-abtest": "/ui/features/search-ranking",
    "abtests": "/ui/abtests",
    "groups": "/ui/groups/beta-testers",
    "subjects": "/ui/subjects?id=7",
    "buckets": "/ui/buckets",
    "history": "/ui/history",
    "health": "/ui/health",
}


def seed(client: httpx.Client) -> None:
    """A catalogue worth looking at: features with rollouts, a live and a scheduled test."""
    for feature, variants in {
        "checkout": ("old", "new"),
        "search-ranking": ("bm25", "vector"),
        "dark-mode": ("off", "on"),
        "onboarding-tour": ("short", "long"),
    }.items():
        client.post(f"/v1/features/{feature}").raise_for_status()
        for variant in variants:
            client.post(f"/v1/features/{feature}/variants/{variant}").raise_for_status()
        client.put(f"/v1/features/{feature}/default_variant/{variants[0]}").raise_for_status()
    for variant, steps in (("old", 3), ("new", 1)):
        client.put(
            f"/v1/features/checkout/variants/{variant}/value",
            json={"value": {"steps": steps, "layout": "classic" if steps > 1 else "one-page"}},
        ).raise_for_status()
    for feature, variant, proportion in (("checkout", "new", 0.3), ("dark-mode", "on", 0.5)):
        client.post(f"/v1/features/{feature}/rollout", params={"variant": variant})
        client.put(f"/v1/features/{feature}/rollout", params={"proportion": proportion})
    client.post("/v1/groups/beta-testers").raise_for_status()
    members = client.post("/v1/groups/beta-testers/subjects", json=list(range(1, 13)))
    members.raise_for_status()  # one write, one History row
    client.post(
        "/v1/groups/beta-testers/overrides/onboarding-tour", params={"variant": "long"}
    ).raise_for_status()
    now = datetime.now(UTC)
    tests = {
        "ranking-q4": ("search-ranking", "bm25", "vector", None),
        "tour-length": ("onboarding-tour", "short", "long", now + timedelta(days=3)),
    }
    for name, (feature, control, treatment, start) in tests.items():
        groups = [
            {"name": "control", "variants": {feature: control}},
            {"name": "treatment", "variants": {feature: treatment}},
        ]
        body: dict[str, object] = {
            "name": name,
            "end": (now + timedelta(days=30)).isoformat(),
            "groups": groups,
        }
        if start is not None:
            body["start"] = start.isoformat()
        client.post("/v1/abtests", json={"test": body}).raise_for_status()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        with admin_server(f"sqlite:///{directory / 'shots.db'}", directory) as server:
            seed(server.client)
            with chromium() as browser:
                page = browser.new_page(
                    base_url=str(server.client.base_url), viewport={"width": 1280, "height": 800}
                )
                page.goto("/ui/signin")
                page.get_by_label("Token").fill(PM_TOKEN)
                page.get_by_role("button", name="Sign in").click()
                for name, path in PAGES.items():
                    page.goto(path)
                    page.screenshot(path=str(OUT / f"{name}.png"))
                page.goto("/ui/abtests")
                for field, text in {
                    "name": "checkout-q1",
                    "g0.name": "control",
                    "g0.percent": "50",
                    "g0.f0": "checkout",
                    "g0.v0": "old",
                    "g1.name": "one-page",
                    "g1.percent": "50",
                    "g1.f0": "checkout",
                    "g1.v0": "new",
                }.items():
                    page.locator(f"#abtest-form input[name='{field}']").fill(text)
                page.locator("#abtest-form").screenshot(path=str(OUT / "abtest-form.png"))
                page.goto("/ui/abtests")
                live = page.locator("section", has=page.locator(".badge.live"))
                live.get_by_role("button", name="Stop test").click()
                page.screenshot(path=str(OUT / "confirm.png"))
                page.set_viewport_size({"width": 390, "height": 844})
                page.goto("/ui/features/checkout")
                page.screenshot(path=str(OUT / "feature-phone.png"))
    print(f"wrote {len(PAGES) + 3} screenshots to {OUT}")


if __name__ == "__main__":
    main()
