"""The dashboard over HTTP, on SQLite and PostgreSQL: escaping, CSRF, sign-in and roles, the
read-only lock, errors beside the field, the rollout preview matching what is applied, typed
variant values, the A/B-test form, and the session key's derivation.
The browser tests (tests/ui) drive the same pages in Chromium."""

from __future__ import annotations

import re

import httpx

from flaggery.store.actor import ANONYMOUS
from flaggery.tokens import parse_tokens
from flaggery.ui.session import session_key
from tests.http.conftest import MakeClient
from tests.http.helpers import fails, ok

XSS = "<img src=x onerror=alert(1)>"
TOKENS = "alice:admin:alice-secret-1\nrita:reader:rita-secret-1"


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text)
    assert found, page.text
    return found.group(1)


async def revision(client: httpx.AsyncClient) -> int:
    return int(ok(await client.get("/v1/revision"))["revision"])


async def sign_in(client: httpx.AsyncClient, secret: str) -> httpx.Response:
    csrf = csrf_of(await client.get("/ui/signin"))
    return await client.post("/ui/signin", data={"csrf": csrf, "token": secret})


async def test_a_feature_named_like_markup_is_shown_as_text(make_client: MakeClient) -> None:
    client = await make_client()
    csrf = csrf_of(await client.get("/ui/features"))
    created = await client.post("/ui/features", data={"csrf": csrf, "name": XSS})
    assert created.status_code == 303
    for path in ("/ui/features", created.headers["location"], "/ui/history"):
        page = await client.get(path)
        assert page.status_code == 200
        assert XSS not in page.text
        assert "&lt;img src=x onerror=alert(1)&gt;" in page.text


async def test_every_page_has_a_policy_forbidding_inline_script(make_client: MakeClient) -> None:
    client = await make_client()
    for path in ("features", "abtests", "groups", "subjects", "buckets", "history", "health"):
        page = await client.get(f"/ui/{path}")
        assert page.status_code == 200, path
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert "<script>" not in page.text and " style=" not in page.text


async def test_a_post_without_the_csrf_token_is_refused_and_writes_nothing(
    make_client: MakeClient,
) -> None:
    client = await make_client()
    csrf = csrf_of(await client.get("/ui/features"))
    before = await revision(client)
    fails(await client.post("/ui/features", data={"name": "f"}), 403, "Forbidden")
    fails(await client.post("/ui/features", data={"name": "f", "csrf": "0" * 64}), 403, "Forbidden")
    assert await revision(client) == before
    headers = {"X-CSRF-Token": csrf}
    assert (
        await client.post("/ui/features", data={"name": "f"}, headers=headers)
    ).status_code == 303
    assert await revision(client) == before + 1


async def test_a_broken_form_body_is_a_validation_error(make_client: MakeClient) -> None:
    client = await make_client()
    broken = await client.post(
        "/ui/features",
        content=b"--x\r\nContent-Disposition: form-data\r\n\r\nno closing boundary",
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    fails(broken, 400, "ValidationError")
    assert "The form could not be read" in broken.text


async def test_a_refused_write_shows_the_message_beside_the_field(make_client: MakeClient) -> None:
    client = await make_client()
    csrf = csrf_of(await client.get("/ui/features"))
    before = await revision(client)
    page = await client.post("/ui/features", data={"csrf": csrf, "name": "a/b"})
    assert page.status_code == 400
    assert re.search(r'class="error" role="alert">Invalid feature name', page.text)
    assert await revision(client) == before


async def test_a_path_or_query_that_is_not_utf8_is_refused(make_client: MakeClient) -> None:
    """As on the REST routes: the dashboard reads no feature name or field as U+FFFD."""
    client = await make_client()
    ok(await client.post("/v1/features/caf%C3%A9"), 201)
    page = await client.get(httpx.URL("/ui/features/caf%C3%A9"))
    assert page.status_code == 200 and "café" in page.text
    for raw in ("/ui/features/caf%E9", "/ui/features/%ED%A0%80", "/ui/features?q=%FF"):
        message = fails(await client.get(httpx.URL(raw)), 400, "ValidationError")
        assert "UTF-8" in message, message
    # A form body is query syntax too: a string value caf%E9 was stored as 'caf\ufffd'.
    csrf = csrf_of(page)
    ok(await client.post("/v1/features/caf%C3%A9/variants/on", params={"make_default": True}), 201)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for text in (b"caf%E9", b"%FF", b"caf%C3%A9"):
        body = b"csrf=%s&variant=on&type=string&value=" % csrf.encode() + text
        posted = await client.post("/ui/features/caf%C3%A9/value", content=body, headers=form)
        if text == b"caf%C3%A9":
            assert posted.status_code == 303, posted.text
        else:
            assert "UTF-8" in fails(posted, 400, "ValidationError")
            assert ok(await client.get("/v1/features/caf%C3%A9"))["values"] == {}
    assert ok(await client.get("/v1/features/caf%C3%A9"))["values"] == {"on": "café"}


async def test_a_read_only_server_locks_the_dashboard(make_client: MakeClient) -> None:
    client = await make_client(admin_mode=False)
    for path in ("/ui/features", "/ui/static/ui.css", "/ui/signin"):
        fails(await client.get(path), 423, "NotAdmin")
    fails(await client.post("/ui/features", data={"name": "f"}), 423, "NotAdmin")


async def test_sign_in_roles_and_the_actor_in_history(make_client: MakeClient) -> None:
    client = await make_client(tokens=TOKENS)
    assert (await client.get("/ui/features")).headers["location"] == "/ui/signin"
    wrong = await sign_in(client, "nope")
    assert wrong.status_code == 401 and "not one this server accepts" in wrong.text
    signed = await sign_in(client, "alice-secret-1")
    assert signed.status_code == 303
    cookie = signed.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
    assert "max-age=43200" in cookie  # 12 hours: a copied cookie does not outlive a day
    assert "alice-secret-1" not in signed.headers["set-cookie"]
    csrf = csrf_of(await client.get("/ui/features"))
    assert (await client.post("/ui/features", data={"csrf": csrf, "name": "f"})).status_code == 303
    history = await client.get("/ui/history")
    assert re.search(
        r"<td class=\"actor\">alice</td>\s*<td class=\"change\"><span class=\"sentence\">Feature f "
        r"created",
        history.text,
    )
    await client.post("/ui/signout", data={"csrf": csrf})
    assert (await client.get("/ui/features")).status_code == 303
    await sign_in(client, "rita-secret-1")
    page = await client.get("/ui/features/f")
    assert page.status_code == 200 and "Add variant" not in page.text
    csrf = csrf_of(page)
    fails(await client.post("/ui/features", data={"csrf": csrf, "name": "g"}), 403, "Forbidden")


async def test_the_cookie_is_secure_over_https(make_client: MakeClient) -> None:
    client = await make_client(tokens=TOKENS)
    client.base_url = httpx.URL("https://localhost")
    signed = await sign_in(client, "alice-secret-1")
    assert "secure" in signed.headers["set-cookie"].lower()


async def test_the_preview_is_the_share_the_rollout_lands_on(make_client: MakeClient) -> None:
    client = await make_client()
    ok(await client.put("/v1/buckets", params={"amount": 20}))
    ok(
        await client.post(
            "/v1/subjects", json=[{"id": i, "weight": 1 + i % 7} for i in range(300)]
        ),
        201,
    )
    csrf = csrf_of(await client.get("/ui/features"))
    await client.post("/ui/features", data={"csrf": csrf, "name": "f"})
    for variant in ("off", "on"):
        await client.post("/ui/features/f/variants", data={"csrf": csrf, "variant": variant})
    preview = await client.get("/ui/features/f/preview", params={"percent": "30"})
    landed = re.search(r"\((\d+) of (\d+)\)", preview.text)
    assert landed, preview.text
    await client.post(
        "/ui/features/f/rollout", data={"csrf": csrf, "variant": "on", "percent": "30"}
    )
    rollout = ok(await client.get("/v1/features/f/rollout"))
    assert rollout["proportion"] == 0.3
    assert rollout["effective_weight"] == int(landed.group(1))
    page = (await client.get("/ui/features/f")).text
    key_share = re.search(r'id="key-share">([\d.]+)%</strong> \((\d+) buckets\)', page)
    assert key_share, page  # the dashboard shows both shares
    assert float(key_share.group(1)) == round(100 * len(rollout["buckets"]) / 20, 1)
    assert int(key_share.group(2)) == len(rollout["buckets"])
    assert ANONYMOUS in (await client.get("/ui/history")).text


async def test_forms_for_tests_groups_and_the_kill_switch(make_client: MakeClient) -> None:
    client = await make_client()
    ok(await client.put("/v1/buckets", params={"amount": 4}))
    ok(await client.post("/v1/subjects", json=[{"id": i, "weight": 1} for i in range(20)]), 201)
    csrf = csrf_of(await client.get("/ui/features"))
    form = {"csrf": csrf, "name": "t", "end": "2099-01-01"}
    form |= {"g0.name": "a", "g0.f0": "nope", "g0.v0": "x"}
    form |= {"g1.name": "b", "g1.f0": "nope", "g1.v0": "y"}
    refused = await client.post("/ui/abtests", data=form)
    assert refused.status_code == 404 and "Feature &#39;nope&#39; does not exist" in refused.text
    await client.post("/ui/features", data={"csrf": csrf, "name": "f"})
    await client.post("/ui/features/f/variants", data={"csrf": csrf, "variant": "on"})
    await client.post(
        "/ui/features/f/rollout", data={"csrf": csrf, "variant": "on", "percent": "50"}
    )
    unconfirmed = await client.post("/ui/features/f/kill", data={"csrf": csrf})
    assert unconfirmed.status_code == 200 and "Kill f?" in unconfirmed.text
    # 20 subjects in 4 buckets, the rollout at 50%: its subjects and the others go to Off.
    assert "f goes from on (the rollout) to Off (disabled) (the kill switch)" in (unconfirmed.text)
    assert ok(await client.get("/v1/features/f/rollout"))["proportion"] == 0.5
    confirmed = {"csrf": csrf, "confirm": "on"}
    assert (await client.post("/ui/features/f/kill", data=confirmed)).status_code == 303
    assert ok(await client.get("/v1/features/f"))["killed"] is True
    assert ok(await client.get("/v1/subjects/1/flags"))["flags"] == {"f": "__DISABLE__"}
    page = await client.get("/ui/features/f")
    assert "Kill switch on" in page.text and 'action="/ui/features/f/unkill"' in page.text
    assert 'class="badge killed"' in (await client.get("/ui/features")).text
    assert ok(await client.get("/v1/features/f/rollout"))["proportion"] == 0.5  # kept
    assert (await client.post("/ui/features/f/unkill", data=confirmed)).status_code == 303
    assert ok(await client.get("/v1/features/f"))["killed"] is False
    assert "Kill switch on" not in (await client.get("/ui/features/f")).text
    await client.post("/ui/groups", data={"csrf": csrf, "name": "g"})
    for subject in ("3", "5"):
        await client.post("/ui/groups/g/members", data={"csrf": csrf, "subject": subject})
    removal = {"csrf": csrf, "subject": "3"}
    asked = await client.post("/ui/groups/g/members/remove", data=removal)
    assert "Remove subject 3 from group g?" in asked.text
    assert ok(await client.get("/v1/groups/g"))["subjects"] == [3, 5]
    await client.post("/ui/groups/g/members/remove", data=removal | {"confirm": "on"})
    assert ok(await client.get("/v1/groups/g"))["subjects"] == [5]
    bad = await client.post("/ui/groups/g/members", data={"csrf": csrf, "subject": "x"})
    assert bad.status_code == 400 and "A subject id must be a whole number" in bad.text
    # Every destructive form is confirmed on a page naming its effect, whatever sends the post.
    for path in ("/ui/groups/g/remove", "/ui/features/f/remove"):
        for unconfirmed_form in ({"csrf": csrf}, {"csrf": csrf, "confirm": ["off", "on"]}):
            asked = await client.post(path, data=unconfirmed_form)
            assert asked.status_code == 200 and 'name="confirm" value="on"' in asked.text
    assert ok(await client.get("/v1/groups/g"))["subjects"] == [5]
    assert (await client.post("/ui/groups/g/remove", data=confirmed)).status_code == 303
    fails(await client.get("/v1/groups/g"), 404, "GroupNotFound")


async def test_typed_variant_values_shown_and_set(make_client: MakeClient) -> None:
    client = await make_client()
    csrf = csrf_of(await client.get("/ui/features"))
    await client.post("/ui/features", data={"csrf": csrf, "name": "f"})
    for variant in ("off", "on"):
        await client.post("/ui/features/f/variants", data={"csrf": csrf, "variant": variant})

    async def set_value(variant: str, kind: str, text: str) -> httpx.Response:
        form = {"csrf": csrf, "variant": variant, "type": kind, "value": text}
        return await client.post("/ui/features/f/value", data=form)

    assert (await set_value("on", "object", '{"limit": 3, "tags": ["a"]}')).status_code == 303
    assert (await set_value("off", "boolean", " False ")).status_code == 303
    values = ok(await client.get("/v1/features/f"))["values"]
    assert values == {"on": {"limit": 3, "tags": ["a"]}, "off": False}
    page = (await client.get("/ui/features/f")).text
    assert re.search(r"<code>false</code> <span class=\"muted\">boolean</span>", page)
    assert "<code>{&#34;limit&#34;:3,&#34;tags&#34;:[&#34;a&#34;]}</code>" in page
    assert (await set_value("on", "number", "2.5")).status_code == 303
    assert (await set_value("off", "string", "true")).status_code == 303
    values = ok(await client.get("/v1/features/f"))["values"]
    assert values == {"on": 2.5, "off": "true"}  # the string, not the boolean

    before = await revision(client)
    for kind, text, message in (
        ("number", "lots", "A number value is written like 42 or 2.5, got &#39;lots&#39;."),
        ("boolean", "yes", "A boolean value is true or false"),
        ("object", "[1]", "An object value is JSON in braces"),
        ("object", "{", "An object value must be JSON"),
        ("number", str(2**64), "An integer value must fit in 64 bits"),
    ):
        refused = await set_value("on", kind, text)
        assert refused.status_code == 400, (kind, text)
        assert re.search(r'class="error" role="alert">' + re.escape(message), refused.text)
        assert f'value="{text}"' in refused.text  # kept, to correct it
    assert await revision(client) == before

    assert (await set_value("on", "none", "ignored")).status_code == 303
    assert ok(await client.get("/v1/features/f"))["values"] == {"off": "true"}
    assert "its name" in (await client.get("/ui/features/f")).text


async def test_the_abtest_form_grows_and_reports_beside_each_field(
    make_client: MakeClient,
) -> None:
    client = await make_client()
    ok(await client.put("/v1/buckets", params={"amount": 8}))
    csrf = csrf_of(await client.get("/ui/features"))
    for feature in ("f", "g"):
        await client.post("/ui/features", data={"csrf": csrf, "name": feature})
        for variant in ("x", "y"):
            await client.post(
                f"/ui/features/{feature}/variants", data={"csrf": csrf, "variant": variant}
            )
    page = await client.get("/ui/abtests")
    assert page.text.count('<fieldset class="group">') == 2 and 'name="g0.f0"' in page.text
    typed = {"groups": "2", "pairs": "1", "name": "t", "g0.name": "<ctl>", "g1.f0": "f"}
    wider = await client.get("/ui/abtests/form", params={**typed, "add": "group"})
    assert wider.text.count('<fieldset class="group">') == 3
    assert 'name="g0.name" maxlength="200" value="&lt;ctl&gt;"' in wider.text
    assert 'name="g1.f0" list="feature-names" maxlength="200" value="f"' in wider.text
    deeper = await client.get("/ui/abtests/form", params={**typed, "add": "pair"})
    assert 'name="g1.v1"' in deeper.text and 'name="g1.v2"' not in deeper.text

    base = {"csrf": csrf, "name": "t", "end": "2099-01-01T00:00:00", "groups": "3", "pairs": "2"}
    good = {
        **base,
        **{"g0.name": "control", "g0.percent": "25", "g0.f0": "f", "g0.v0": "x"},
        **{"g0.f1": "g", "g0.v1": "x"},
        **{"g1.name": "treatment", "g1.percent": "75", "g1.f0": "f", "g1.v0": "y"},
        **{"g1.f1": "g", "g1.v1": "y"},
        **{"g2.name": " ", "g2.f1": ""},  # a blank third group
    }
    before = await revision(client)
    for change, field, message in (
        ({"g1.name": ""}, "g1.name", "Name this group."),
        ({"g1.name": "control"}, "g1.name", "Two groups are named &#39;control&#39;."),
        ({"g0.v1": ""}, "g0.v1", "Choose the variant of &#39;g&#39;."),
        ({"g1.percent": ""}, "g1.percent", "Give a share to every group, or to none"),
        ({"g0.percent": "150"}, "g0.percent", "A share is a percentage from 0 to 100"),
        ({"end": ""}, "end", "Give the end of the test."),
        ({"g1.v0": "nope"}, "create", "Feature &#39;f&#39; has no variant &#39;nope&#39;"),
    ):
        refused = await client.post("/ui/abtests", data={**good, **change})
        assert refused.status_code in (400, 404), (field, refused.status_code)
        assert refused.text.count('class="error"') == 1, field
        # Beside the field: in its group's fieldset, or after the times for the rest.
        start = refused.text.index(f'name="{"end" if field == "create" else field}"')
        ends = (refused.text.find(tag, start) for tag in ("</fieldset>", "</form>"))
        shown = refused.text[start : min(end for end in ends if end >= 0)]
        assert f'class="error" role="alert">{message}' in shown, re.findall("alert.>[^<]*", shown)
        assert 'value="control"' in refused.text  # what was typed stays
    assert await revision(client) == before

    created = await client.post("/ui/abtests", data=good)
    assert created.status_code == 303, created.text
    test = ok(await client.get("/v1/abtests/t"))["test"]
    assert [(g["name"], g["proportion"], g["variants"]) for g in test["groups"]] == [
        ("control", 0.25, {"f": "x", "g": "x"}),
        ("treatment", 0.75, {"f": "y", "g": "y"}),
    ]


def test_the_session_key_is_shared_only_by_the_same_settings() -> None:
    alice = parse_tokens("alice:admin:alice-secret-1")
    secret = "x" * 32
    assert session_key(alice, None) == session_key(alice, None)  # every worker, each restart
    assert session_key((), secret) == session_key((), secret)
    keys = {
        session_key(alice, None),
        session_key(alice, secret),
        session_key((), secret),
        session_key((), "y" * 32),
        session_key(parse_tokens("alice:admin:alice-secret-2"), None),  # rotated: signed out
    }
    assert len(keys) == 5
    assert session_key((), None) != session_key((), None)  # neither: this process only


async def test_a_member_id_that_int_refuses_is_an_error_beside_the_field(
    make_client: MakeClient,
) -> None:
    client = await make_client()
    ok(await client.post("/v1/groups/g"), 201)
    csrf = csrf_of(await client.get("/ui/groups/g"))
    before = await revision(client)
    # "--5" and "²" pass str.isdigit() after lstrip("-") but not int(): they were 500s.
    for text in ("--5", "²", "1e3", "99999999999999999999"):
        page = await client.post("/ui/groups/g/members", data={"csrf": csrf, "subject": text})
        assert page.status_code == 400, (text, page.status_code)
        assert 'class="error" role="alert">A subject id must be a whole number' in page.text
    assert await revision(client) == before
    page = await client.get("/ui/history", params={"before": "²"})
    assert page.status_code == 200
