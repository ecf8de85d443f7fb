"""POST /v1/exposures and GET /v1/abtests/{name}/health, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from tests.fakes import FakeClock
from tests.http.helpers import fails, ok, seed_basics

TEST = {
    "name": "t",
    "end": "2099-01-01",
    "groups": [{"name": "a", "variants": {"f": "A"}}, {"name": "b", "variants": {"f": "B"}}],
}


def exposure(key: str, group: str, clock: FakeClock, **changes: Any) -> dict[str, Any]:
    return {
        "context_id": key,
        "test": "t",
        "group": group,
        "timestamp": clock.now.isoformat(),
    } | changes


async def assigned(client: httpx.AsyncClient) -> dict[str, str]:
    """Subject id (text) -> its test group, from the test's buckets."""
    test = ok(await client.get("/v1/abtests/t"))["test"]
    holder = {b: g["name"] for g in test["groups"] for b in g["buckets"]}
    subjects = [ok(await client.get(f"/v1/subjects/{i}")) for i in range(1, 9)]
    return {str(s["id"]): holder[s["bucket"]] for s in subjects}


async def test_exposures_are_counted_and_health_reports_them(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await seed_basics(client)
    ok(await client.post("/v1/abtests", json={"test": TEST}), 201)
    groups = await assigned(client)
    batch = [exposure(key, group, clock) for key, group in groups.items()]
    batch.append(exposure("1", groups["1"], clock))  # a repeat
    batch.append(exposure("visitor-42", "a", clock))  # a hashed key
    assert ok(await client.post("/v1/exposures", json={"exposures": batch}), 202) == {"counted": 10}
    health = ok(await client.get("/v1/abtests/t/health"))
    subjects, keys = health["populations"]
    assert subjects["population"] == "subjects" and subjects["exposures"] == 8
    counted = {g["name"]: g["exposures"] for g in subjects["groups"]}
    assert counted == {name: list(groups.values()).count(name) for name in ("a", "b")}
    assert keys["population"] == "keys" and keys["exposures"] == 1
    assert health["repeats"] == 1 and health["state"] == "green"
    assert {"chi_squared_p", "sequential_p", "state"} <= set(subjects)
    weighted = ok(await client.get("/v1/abtests/t/health", params={"basis": "weight"}))
    shares = {g["name"]: g["expected_share"] for g in weighted["populations"][0]["groups"]}
    weight_a = sum(int(key) for key, group in groups.items() if group == "a")
    assert abs(shares["a"] - weight_a / 36) < 1e-9


async def test_bad_exposures_are_refused_whole(client: httpx.AsyncClient, clock: FakeClock) -> None:
    await seed_basics(client)
    ok(await client.post("/v1/abtests", json={"test": TEST}), 201)
    good = exposure("1", "a", clock)
    cases: list[tuple[Any, int, str]] = [
        ({"exposures": []}, 422, "RequestValidationError"),
        ({"exposures": [good] * 1001}, 422, "RequestValidationError"),
        ({"exposures": [good | {"extra": 1}]}, 422, "RequestValidationError"),
        (
            {"exposures": [good | {"timestamp": "2030-01-01T00:00:00"}]},
            422,
            "RequestValidationError",
        ),
        ({"exposures": [good | {"context_id": ""}]}, 422, "RequestValidationError"),
        ({"exposures": [good, good | {"test": "nope"}]}, 404, "AbTestNotFound"),
        ({"exposures": [good, good | {"group": "c"}]}, 400, "ValidationError"),
    ]
    for body, status, name in cases:
        message = fails(await client.post("/v1/exposures", json=body), status, name)
        if status == 404 or name == "ValidationError":
            assert message.startswith("exposures[1]: ")
    health = ok(await client.get("/v1/abtests/t/health"))
    assert health["populations"][0]["exposures"] == 0
    fails(await client.get("/v1/abtests/nope/health"), 404, "AbTestNotFound")
    fails(
        await client.get("/v1/abtests/t/health", params={"basis": "x"}),
        422,
        "RequestValidationError",
    )


async def test_exposures_outside_the_window_are_early_or_late(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await seed_basics(client)
    ok(await client.post("/v1/abtests", json={"test": TEST}), 201)
    early = exposure("1", "a", clock, timestamp=(clock.now - timedelta(days=1)).isoformat())
    late = exposure("2", "a", clock, timestamp="2099-01-02T00:00:00+00:00")
    ok(await client.post("/v1/exposures", json={"exposures": [early, late]}), 202)
    health = ok(await client.get("/v1/abtests/t/health"))
    assert (health["early"], health["late"], health["populations"][0]["exposures"]) == (1, 1, 0)


async def test_auto_stop_is_off_by_default_and_set_per_test(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await seed_basics(client)
    ok(await client.post("/v1/abtests", json={"test": TEST}), 201)
    assert "auto_stop" not in ok(await client.get("/v1/abtests/t"))["test"]
    ok(await client.put("/v1/abtests/t/auto-stop", params={"enabled": "true"}))
    assert ok(await client.get("/v1/abtests/t"))["test"]["auto_stop"] is True
    fails(
        await client.put("/v1/abtests/nope/auto-stop", params={"enabled": "true"}),
        404,
        "AbTestNotFound",
    )


async def test_health_shows_the_answers_the_flags_routes_served_per_group(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """Assignments: every plain GET of a subject's flags (200 or 304) counts for the group
    holding its bucket, apart from exposures (none are sent here)."""
    await seed_basics(client)
    ok(await client.post("/v1/abtests", json={"test": TEST}), 201)
    groups = await assigned(client)
    for subject in groups:
        for _ in range(int(subject)):  # subject i asks i times: uneven on purpose
            ok(await client.get(f"/v1/subjects/{subject}/flags"))
    etag = (await client.get("/v1/subjects/1/flags")).headers["etag"]
    not_modified = await client.get("/v1/subjects/1/flags", headers={"If-None-Match": etag})
    assert not_modified.status_code == 304
    served = {name: 0 for name in ("a", "b")}
    for subject, group in groups.items():
        served[group] += int(subject) + (2 if subject == "1" else 0)
    health = ok(await client.get("/v1/abtests/t/health"))
    assert health["assignments"] == served
    assert health["populations"][0]["exposures"] == 0


async def test_ofrep_answers_count_as_assignments_too(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """OFREP serves assignments like the flags routes: each evaluation answered (single flag,
    bulk, a 304 too) counts for the group holding the unit's bucket."""
    await seed_basics(client)
    ok(await client.post("/v1/abtests", json={"test": TEST}), 201)
    groups = await assigned(client)
    served = {name: 0 for name in ("a", "b")}
    for subject, group in groups.items():
        context = {"context": {"targetingKey": subject}}
        ok(await client.post("/ofrep/v1/evaluate/flags/f", json=context))
        bulk = await client.post("/ofrep/v1/evaluate/flags", json=context)
        again = await client.post(
            "/ofrep/v1/evaluate/flags",
            json=context,
            headers={"If-None-Match": bulk.headers["etag"]},
        )
        assert again.status_code == 304
        served[group] += 3
    health = ok(await client.get("/v1/abtests/t/health"))
    assert health["assignments"] == served
