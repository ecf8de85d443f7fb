"""The dashboard never answers 500 to what a browser (or anyone) can post, on SQLite and
PostgreSQL: decimal text goes through flaggery.decimal_text like REST's, JSON values through
the REST decoder's limits, and every <option> carries its exact value."""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from starlette.routing import Mount, Route

from flaggery.http import create_app
from flaggery.settings import Settings
from tests.fakes import FakeClock
from tests.http.conftest import MakeClient
from tests.http.helpers import fails, ok, seed_basics
from tests.http.test_ui import csrf_of


async def test_a_unicode_digit_in_the_abtest_form_query_is_a_400(make_client: MakeClient) -> None:
    client = await make_client()
    for query in ("groups=²", "pairs=٣", "groups=1_0", "groups=" + "9" * 5000):
        message = fails(await client.get(f"/ui/abtests/form?{query}"), 400, "ValidationError")
        assert "must be" in message and len(message) < 200
    assert (await client.get("/ui/abtests/form?groups=3&add=group")).status_code == 200


async def test_decimal_query_text_on_pages_gets_a_message_not_a_500(
    make_client: MakeClient,
) -> None:
    client = await make_client()
    for path in ("/ui/features?page=²", "/ui/history?before=٣", "/ui/groups?page=-1"):
        assert (await client.get(path)).status_code == 200, path
    for path in ("/ui/subjects?id=²", "/ui/history?subject=²"):
        page = await client.get(path)
        assert page.status_code in (200, 404), path
        assert "A subject id must be a whole number" in page.text


async def test_a_deeply_nested_value_is_refused_beside_the_field(make_client: MakeClient) -> None:
    client = await make_client()
    await seed_basics(client)
    csrf = csrf_of(await client.get("/ui/features/f"))
    for kind in ("object", "number"):
        page = await client.post(
            "/ui/features/f/value",
            data={"csrf": csrf, "variant": "A", "type": kind, "value": "[" * 100_000},
        )
        assert page.status_code == 400, kind
        assert "nested too deeply" in page.text or "written like 42" in page.text


async def test_a_lone_surrogate_in_an_object_value_is_named(make_client: MakeClient) -> None:
    client = await make_client()
    await seed_basics(client)
    csrf = csrf_of(await client.get("/ui/features/f"))
    form = {"csrf": csrf, "variant": "A", "type": "object", "value": '{"a": "\\ud800"}'}
    page = await client.post("/ui/features/f/value", data=form)
    assert page.status_code == 400 and "lone UTF-16 surrogate" in page.text, page.text


async def test_every_option_carries_its_exact_value(make_client: MakeClient) -> None:
    client = await make_client()
    ok(await client.post("/v1/features/f"), 201)
    ok(await client.post("/v1/features/f/variants/a  b", params={"make_default": "true"}), 201)
    ok(await client.post("/v1/features/f/variants/a b"), 201)
    ok(await client.post('/v1/features/f/variants/<x">'), 201)
    page = await client.get("/ui/features/f")
    assert "<option>" not in page.text and not re.search(r"<option(?![^>]*value=)", page.text)
    assert '<option value="a  b"' in page.text
    assert '<option value="&lt;x&#34;&gt;"' in page.text
    posted = await client.post(
        "/ui/features/f/rollout", data={"csrf": csrf_of(page), "variant": "a  b", "percent": "10"}
    )
    assert posted.status_code == 303, posted.text
    assert ok(await client.get("/v1/features/f/rollout"))["variant"] == "a  b"


def _post_routes(app: Any) -> list[str]:
    """The dashboard's POST paths, read from the app itself (not a hand-written list), but
    signing in and out: they change the session the other posts run in (tests/http/test_ui)."""
    ui = next(r for r in app.routes if isinstance(r, Mount) and r.path == "/ui")
    posts = [
        r.path for r in ui.routes if isinstance(r, Route) and r.methods and "POST" in r.methods
    ]
    return [path for path in posts if path not in ("/signin", "/signout")]


NASTY = st.sampled_from(
    [
        "",
        " ",
        "²",
        "٣",
        "-0",
        "--5",
        "+5",
        "1_000",
        "1e3",
        "nan",
        "inf",
        "9" * 30,
        "-" + "9" * 30,
        "on",
        "off",
        "object",
        "number",
        "boolean",
        "string",
        "f",
        "g",
        "A",
        "B",
        "2030-01-01",
    ]
)
TEXT = st.one_of(
    NASTY,
    st.text(max_size=30),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    # 1000 "[" already overflow msgspec's nesting limit (RecursionError); longer runs only
    # cost time: the form decoder unquotes every "%5B" in Python (100_000 took ~half the test).
    st.sampled_from([1, 1000, 10_000]).map(lambda n: "[" * n),
    st.sampled_from([1000, 100_000]).map(lambda n: "x" * n),
)
FIELDS = [
    "name", "variant", "type", "value", "percent", "make_default", "subject", "feature",
    "confirm", "start", "end", "groups", "pairs",
    "g0.name", "g0.percent", "g0.f0", "g0.v0", "g1.name", "g1.percent", "g1.f0", "g1.v0",
    "g25.name",
]  # fmt: skip
# Each field present or not, once or twice (a duplicate: which one counts is the server's call).
FORMS = st.fixed_dictionaries(
    {}, optional={field: st.lists(TEXT, min_size=1, max_size=2) for field in FIELDS}
)
NAMES = st.one_of(st.just("f"), st.just("g"), st.text(min_size=1, max_size=20))


@pytest.mark.slow(seconds=20)
def test_no_dashboard_form_answers_500(db_url: str, clock: FakeClock) -> None:
    """Every POST route of /ui (from the app) with generated forms: never a 5xx. One app for
    all examples (Hypothesis drives a synchronous function, the app runs on its own loop)."""
    loop = asyncio.new_event_loop()
    stack = contextlib.AsyncExitStack()
    try:
        app = create_app(
            Settings(db_url=db_url, db_auto_upgrade=False, admin_mode=True), clock=clock
        )
        loop.run_until_complete(stack.enter_async_context(app.router.lifespan_context(app)))
        transport = httpx.ASGITransport(app, raise_app_exceptions=False)
        client = httpx.AsyncClient(transport=transport, base_url="http://localhost")
        loop.run_until_complete(seed_basics(client))
        loop.run_until_complete(client.post("/v1/groups/g"))
        csrf = csrf_of(loop.run_until_complete(client.get("/ui/features")))
        paths = _post_routes(app)
        assert len(paths) >= 15, paths

        # No shrinking: a failing form is reported as found (shrinking 20 forms takes minutes).
        @settings(
            max_examples=20,  # about 50 forms a round: 20 rounds took 1-2 min per database
            deadline=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.generate],
        )
        @given(name=NAMES, forms=st.lists(FORMS, min_size=len(paths), max_size=len(paths)))
        def post_every_form(name: str, forms: list[dict[str, list[str]]]) -> None:
            for path, form in zip(paths, forms, strict=True):
                url = "/ui" + path.replace("{name:path}", quote(name, safe=""))
                response = loop.run_until_complete(client.post(url, data={"csrf": csrf, **form}))
                seen.add(response.status_code)
                assert response.status_code < 500, (url, form, response.text[:500])

        seen: set[int] = set()
        post_every_form()
        assert {303, 400} <= seen, seen  # the forms reached their writes, not only a 404
    finally:
        loop.run_until_complete(stack.aclose())
        loop.close()
