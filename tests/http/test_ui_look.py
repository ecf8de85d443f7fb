"""The dashboard's look where it carries meaning, on SQLite and PostgreSQL: the sign-in page
says where a token comes from, the stylesheet follows the system's dark mode and lays History
out for a phone, and the Buckets chart has axes that call a weight a weight."""

from __future__ import annotations

import re

from tests.http.conftest import MakeClient
from tests.http.helpers import ok
from tests.http.test_ui import TOKENS


async def test_the_sign_in_page_says_where_a_token_comes_from(make_client: MakeClient) -> None:
    client = await make_client(tokens=TOKENS)
    page = await client.get("/ui/signin")
    assert page.status_code == 200
    for words in (
        "FLAGGERY_TOKENS",
        "FLAGGERY_ADMIN_TOKEN",
        "docs/security.md",
        "name:role:secret",
    ):
        assert words in page.text, words


async def test_the_stylesheet_has_a_dark_mode_and_a_phone_layout_for_history(
    make_client: MakeClient,
) -> None:
    client = await make_client()
    css = (await client.get("/ui/static/ui.css")).text
    dark = css[css.index("@media (prefers-color-scheme: dark)") :]
    assert "--bg:" in dark and "--card:" in dark and "--field:" in dark
    # No fixed light colour left outside the palette and the always-dark top bar.
    rules = [rule for rule in css.split("}") if ":root" not in rule and ".top" not in rule]
    assert not [rule for rule in rules if re.search(r"background: ?#f|#fff;", rule)]
    phone = css[css.index("@media (max-width: 720px)") :]
    assert "table.history thead { display: none; }" in phone
    assert "overflow-wrap: anywhere" not in css[css.index("table.history") :]
    history = await client.get("/ui/history")
    assert '<table class="history"' in history.text


async def test_the_buckets_chart_has_weight_and_bucket_id_axes(make_client: MakeClient) -> None:
    client = await make_client()
    empty = await client.get("/ui/buckets")
    assert "No buckets yet" in empty.text and "<svg" not in empty.text
    ok(await client.put("/v1/buckets", params={"amount": 3}))
    ids = [b["id"] for b in ok(await client.get("/v1/buckets"))["buckets"]]
    for subject, weight in ((1, 5), (2, 7)):
        ok(await client.post(f"/v1/subjects/{subject}", params={"weight": weight}), 201)
    weights = [b["weight"] for b in ok(await client.get("/v1/buckets"))["buckets"]]
    page = (await client.get("/ui/buckets")).text
    ticks = re.search(r'class="y-ticks"[^>]*><span>(\d+)</span><span>0</span>', page)
    assert ticks and int(ticks.group(1)) == max(weights)
    assert 'class="y-title" aria-hidden="true">Weight<' in page
    x = re.search(
        r'class="x-ticks"[^>]*><span>(\d+)</span><span>Bucket id</span><span>(\d+)<', page
    )
    assert x and (int(x.group(1)), int(x.group(2))) == (ids[0], ids[-1])
    assert page.count('class="axis"') == 2 and page.count("<rect ") == 3
    assert "heaviest bucket (" not in page  # the old caption called a weight a bucket
