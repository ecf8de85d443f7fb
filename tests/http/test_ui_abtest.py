"""The dashboard's A/B test page: dates, groups, state and the health panel; its links."""

from __future__ import annotations

import httpx

from tests.fakes import FakeClock
from tests.http.helpers import ok, seed_basics
from tests.http.test_exposures import TEST, exposure


async def test_the_test_page_shows_its_health_and_is_linked(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await seed_basics(client)
    ok(await client.post("/v1/abtests", json={"test": TEST}), 201)
    # 120 visitors (hashed keys) and 8 subjects all shown 'a': a stale client; red.
    batch = [exposure(f"visitor-{i}", "a", clock) for i in range(120)]
    batch += [exposure(str(i), "a", clock) for i in range(1, 9)]
    ok(await client.post("/v1/exposures", json={"exposures": batch}), 202)
    for subject in (1, 2, 3):
        ok(await client.get(f"/v1/subjects/{subject}/flags"))
    page = await client.get("/ui/abtests/t")
    assert page.status_code == 200
    text = page.text
    assert '<span class="badge live">live</span>' in text
    assert '<span class="badge health-red">red</span>' in text
    assert "keys: 120 first exposures" in text and "subjects: 8 first exposures" in text
    end = '<time data-local datetime="2099-01-01T00:00:00+00:00">2099-01-01 00:00:00 UTC</time>'
    assert end in text  # UTC; localtime.js adds the browser's local time beside it
    assert '<script src="/ui/static/localtime.js" defer></script>' in text
    assert "Per bucket: observed against expected" in text
    misassigned = ok(await client.get("/v1/abtests/t/health"))["misassigned"]
    assert f"<dt>Misassigned</dt><dd>{misassigned} " in text and misassigned > 0
    served = ok(await client.get("/v1/abtests/t/health"))["assignments"]
    assert sum(served.values()) == 3
    assert f"<dt>Assignments</dt><dd>a: {served['a']}, b: {served['b']} " in text
    assert (await client.get("/ui/static/localtime.js")).status_code == 200
    for listing in ("/ui/abtests", "/ui/features", "/ui/features/f"):
        assert 'href="/ui/abtests/t"' in (await client.get(listing)).text, listing
    missing = await client.get("/ui/abtests/nope")
    assert missing.status_code == 404 and "nope" in missing.text
