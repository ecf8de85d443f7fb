"""Every admin route of the 0.2.1 table, and the new ones: shapes, status codes, errors, and
read-your-writes through the flags route. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import httpx

from tests.fakes import FakeClock
from tests.http.helpers import OK, fails, ok, seed_basics


async def test_subjects_lifecycle(client: httpx.AsyncClient) -> None:
    fails(await client.post("/v1/subjects/1", params={"weight": 1}), 409, "NoBuckets")
    assert ok(await client.put("/v1/buckets", params={"amount": 2})) == {"bucket_ids": [1, 2]}
    added = ok(await client.post("/v1/subjects/1", params={"weight": 5}), 201)
    assert added == {"subject_id": 1, "weight": 5, "bucket_id": 1}
    assert ok(await client.post("/v1/subjects/2", params={"weight": 1}), 201)["bucket_id"] == 2
    fails(await client.post("/v1/subjects/1", params={"weight": 1}), 400, "SubjectExists")
    fails(await client.post("/v1/subjects/3", params={"weight": 0}), 400, "ValidationError")
    fails(await client.post("/v1/subjects/3"), 422, "RequestValidationError")

    assert ok(await client.put("/v1/subjects/2", params={"weight": 7})) == OK
    subject = ok(await client.get("/v1/subjects/2"))
    assert subject == {"id": 2, "weight": 7, "bucket": 2, "groups": []}
    fails(await client.put("/v1/subjects/9", params={"weight": 7}), 404, "SubjectNotFound")

    assert ok(await client.delete("/v1/subjects/2")) == OK
    fails(await client.get("/v1/subjects/2"), 404, "SubjectNotFound")
    fails(await client.delete("/v1/subjects/2"), 404, "SubjectNotFound")


async def test_bulk_subjects(client: httpx.AsyncClient) -> None:
    ok(await client.put("/v1/buckets", params={"amount": 3}))
    body = [{"id": 10, "weight": 3}, {"id": 11}, {"id": 12, "weight": 2}]
    assert ok(await client.post("/v1/subjects", json=body), 201) == {
        "added": 3,
        "bucket_ids": [1, 2, 3],
    }
    assert ok(await client.get("/v1/subjects/11")) == {
        "id": 11,
        "weight": 1,
        "bucket": 2,
        "groups": [],
    }
    fails(await client.post("/v1/subjects", json=[{"id": 10}]), 400, "SubjectExists")
    fails(await client.post("/v1/subjects", json=[{"id": 1}, {"id": 1}]), 400, "ValidationError")
    fails(await client.post("/v1/subjects", json=[{"id": "x"}]), 422, "RequestValidationError")
    fails(await client.post("/v1/subjects", json=[{"id": 2**63}]), 422, "RequestValidationError")
    fails(
        await client.post("/v1/subjects", json=[{"id": 1, "w": 2}]), 422, "RequestValidationError"
    )
    fails(await client.post("/v1/subjects", content=b"[{"), 422, "RequestValidationError")
    fails(await client.post("/v1/subjects"), 422, "RequestValidationError")


async def test_buckets(client: httpx.AsyncClient) -> None:
    assert ok(await client.get("/v1/buckets")) == {
        "total_buckets": 0,
        "total_weight": 0,
        "buckets": [],
    }
    ok(await client.put("/v1/buckets", params={"amount": 2}))
    ok(await client.post("/v1/subjects/1", params={"weight": 4}), 201)
    assert ok(await client.get("/v1/buckets")) == {
        "total_buckets": 2,
        "total_weight": 4,
        "buckets": [{"id": 1, "weight": 4}, {"id": 2, "weight": 0}],
    }
    fails(await client.put("/v1/buckets", params={"amount": 0}), 400, "ValidationError")
    fails(await client.put("/v1/buckets", params={"amount": "two"}), 422, "RequestValidationError")
    fails(await client.put("/v1/buckets"), 422, "RequestValidationError")


async def test_features_and_variants(client: httpx.AsyncClient) -> None:
    assert ok(await client.get("/v1/features")) == {"features": []}
    assert ok(await client.post("/v1/features/checkout"), 201) == OK
    fails(await client.post("/v1/features/checkout"), 400, "FeatureExists")
    created = ok(await client.get("/v1/features/checkout"))
    assert created.pop("reach_revision") >= 1  # what reach was counted at (test_feature_reach)
    assert created == {
        "feature_name": "checkout",
        "variants": [],
        "default_variant": None,
        "values": {},
        "killed": False,
        "reach": [],
    }
    fails(await client.get("/v1/features/nope"), 404, "FeatureNotFound")

    ok(await client.post("/v1/features/checkout/variants/A"), 201)
    ok(await client.post("/v1/features/checkout/variants/B", params={"make_default": True}), 201)
    fails(await client.post("/v1/features/checkout/variants/B"), 400, "VariantExists")
    fails(await client.post("/v1/features/nope/variants/B"), 404, "FeatureNotFound")
    fails(await client.post("/v1/features/checkout/variants/__DISABLE__"), 400, "ValidationError")
    response = await client.post("/v1/features/checkout/variants/C", params={"make_default": "x"})
    fails(response, 422, "RequestValidationError")
    ok(await client.post("/v1/features/checkout/disabling_variant"), 201)
    fails(await client.post("/v1/features/checkout/disabling_variant"), 400, "VariantExists")
    feature = ok(await client.get("/v1/features/checkout"))
    assert sorted(feature["variants"]) == ["A", "B", "__DISABLE__"]
    assert feature["default_variant"] == "B"

    assert ok(await client.put("/v1/features/checkout/default_variant/A")) == OK
    assert ok(await client.get("/v1/features/checkout"))["default_variant"] == "A"
    fails(await client.put("/v1/features/checkout/default_variant/Z"), 404, "VariantNotFound")

    fails(await client.delete("/v1/features/checkout/variants/A"), 400, "VariantIsUsed")
    assert ok(await client.delete("/v1/features/checkout/variants/B")) == OK
    fails(await client.delete("/v1/features/checkout/variants/B"), 404, "VariantNotFound")
    ok(await client.post("/v1/features/empty"), 201)
    assert ok(await client.get("/v1/features")) == {"features": ["checkout", "empty"]}
    assert ok(await client.delete("/v1/features/empty")) == OK
    fails(await client.delete("/v1/features/empty"), 404, "FeatureNotFound")


async def test_rollouts(client: httpx.AsyncClient) -> None:
    await seed_basics(client)
    fails(await client.get("/v1/features/f/rollout"), 404, "RolloutNotFound")
    fails(
        await client.post("/v1/features/f/rollout", params={"variant": "Z"}), 404, "VariantNotFound"
    )
    assert ok(await client.post("/v1/features/f/rollout", params={"variant": "B"}), 201) == OK
    fails(
        await client.post("/v1/features/f/rollout", params={"variant": "B"}), 400, "RolloutExists"
    )
    assert ok(await client.get("/v1/features/f/rollout")) == {
        "feature": "f",
        "variant": "B",
        "proportion": 0.0,
        "effective_weight": 0,
        "buckets": [],
        "weight_share": 0.0,
        "key_share": 0.0,
    }
    assert ok(await client.put("/v1/features/f/rollout", params={"proportion": 1})) == OK
    rollout = ok(await client.get("/v1/features/f/rollout"))
    assert rollout["buckets"] == [1, 2, 3, 4] and rollout["effective_weight"] == 36
    assert (rollout["weight_share"], rollout["key_share"]) == (1.0, 1.0)
    assert ok(await client.put("/v1/features/f/rollout", params={"proportion": 0.5})) == OK
    half = ok(await client.get("/v1/features/f/rollout"))
    # Two shares, each of its own whole: the weight its buckets carry, and its buckets' count
    # (what hashed keys get); uneven bucket weights make them differ.
    assert half["weight_share"] == half["effective_weight"] / 36
    assert half["key_share"] == len(half["buckets"]) / 4
    assert ok(await client.put("/v1/features/f/rollout", params={"proportion": 1})) == OK
    assert ok(await client.get("/v1/subjects/3/flags")) == {"flags": {"f": "B"}}

    # 0% is a real value (0.2.1 ignored it), and a bad proportion changes nothing at all.
    ok(await client.put("/v1/features/f/rollout", params={"proportion": 0, "variant": "A"}))
    assert ok(await client.get("/v1/features/f/rollout"))["buckets"] == []
    response = await client.put("/v1/features/f/rollout", params={"proportion": 2, "variant": "B"})
    fails(response, 400, "InvalidRolloutProportion")
    assert ok(await client.get("/v1/features/f/rollout"))["variant"] == "A"
    fails(await client.put("/v1/features/f/rollout"), 422, "RequestValidationError")
    response = await client.put("/v1/features/f/rollout", params={"proportion": "half"})
    fails(response, 422, "RequestValidationError")
    fails(
        await client.put("/v1/features/g/rollout", params={"variant": "A"}), 404, "FeatureNotFound"
    )


async def test_groups(client: httpx.AsyncClient) -> None:
    await seed_basics(client)
    assert ok(await client.get("/v1/groups")) == {"groups": []}
    assert ok(await client.post("/v1/groups/beta"), 201) == OK
    fails(await client.post("/v1/groups/beta"), 400, "GroupExists")
    assert ok(await client.post("/v1/groups/beta/subjects/3")) == OK
    fails(await client.post("/v1/groups/beta/subjects/3"), 400, "SubjectAlreadyInGroup")
    fails(await client.post("/v1/groups/beta/subjects/99"), 404, "SubjectNotFound")
    fails(await client.post("/v1/groups/nope/subjects/3"), 404, "GroupNotFound")
    fails(await client.post("/v1/groups/beta/subjects/x"), 422, "RequestValidationError")

    assert ok(await client.post("/v1/groups/beta/overrides/f", params={"variant": "B"})) == OK
    response = await client.post("/v1/groups/beta/overrides/f", params={"variant": "Z"})
    fails(response, 404, "VariantNotFound")
    assert ok(await client.get("/v1/groups/beta")) == {
        "group_name": "beta",
        "subjects": [3],
        "overrides": {"f": "B"},
    }
    assert ok(await client.get("/v1/subjects/3")) == {
        "id": 3,
        "weight": 3,
        "bucket": ok(await client.get("/v1/subjects/3"))["bucket"],
        "groups": ["beta"],
    }
    assert ok(await client.get("/v1/subjects/3/flags")) == {"flags": {"f": "B"}}
    assert ok(await client.get("/v1/subjects/4/flags")) == {"flags": {"f": "A"}}
    assert ok(await client.get("/v1/groups")) == {"groups": ["beta"]}

    assert ok(await client.delete("/v1/groups/beta/overrides/f")) == OK
    fails(await client.delete("/v1/groups/beta/overrides/f"), 404, "OverrideNotFound")
    assert ok(await client.get("/v1/subjects/3/flags")) == {"flags": {"f": "A"}}
    assert ok(await client.delete("/v1/groups/beta/subjects/3")) == OK
    fails(await client.delete("/v1/groups/beta/subjects/3"), 400, "SubjectNotInGroup")
    assert ok(await client.delete("/v1/groups/beta")) == OK
    fails(await client.get("/v1/groups/beta"), 404, "GroupNotFound")
    fails(await client.delete("/v1/groups/beta"), 404, "GroupNotFound")


def _test_body(start: str, end: str, **extra: object) -> dict[str, object]:
    groups = [
        {"name": "control", "variants": {"f": "A"}},
        {"name": "experiment", "variants": {"f": "B"}},
    ]
    return {"test": {"name": "t1", "start": start, "end": end, "groups": groups, **extra}}


async def test_abtests(client: httpx.AsyncClient, clock: FakeClock) -> None:
    await seed_basics(client)
    assert ok(await client.get("/v1/abtests")) == {"abtests": []}
    # Dates are midnight UTC (0.2.1's format); clock.now is 2030-01-01T00:00Z.
    created = await client.post("/v1/abtests", json=_test_body("2030-01-02", "2030-01-03"))
    assert ok(created, 201) == OK
    fails(
        await client.post("/v1/abtests", json=_test_body("2030-01-02", "2030-01-03")),
        400,
        "AbTestExists",
    )
    test = ok(await client.get("/v1/abtests/t1"))["test"]
    assert test["start"] == "2030-01-02T00:00:00Z" and test["end"] == "2030-01-03T00:00:00Z"
    assert [g["name"] for g in test["groups"]] == ["control", "experiment"]
    assert [g["proportion"] for g in test["groups"]] == [0.5, 0.5]
    assert sorted(b for g in test["groups"] for b in g["buckets"]) == [1, 2, 3, 4]
    assert sum(g["effective_weight"] for g in test["groups"]) == 36
    assert sum(g["key_share"] for g in test["groups"]) == 1.0
    assert [g["weight_share"] for g in test["groups"]] == [
        g["effective_weight"] / 36 for g in test["groups"]
    ]
    assert ok(await client.get("/v1/abtests")) == {"abtests": ["t1"]}
    fails(await client.get("/v1/abtests/nope"), 404, "AbTestNotFound")

    experiment = next(g for g in test["groups"] if g["name"] == "experiment")
    buckets = {s: await _bucket(client, s) for s in range(1, 9)}
    subject = next(s for s, b in buckets.items() if b in experiment["buckets"])
    assert ok(await client.get(f"/v1/subjects/{subject}/flags")) == {"flags": {"f": "A"}}
    clock.advance(days=1, seconds=1)  # the test is live; the evaluator's timer notices
    await _until_flags(client, subject, {"f": "B"})


async def test_abtest_datetimes_and_errors(client: httpx.AsyncClient, clock: FakeClock) -> None:
    await seed_basics(client)
    # Naive datetimes are UTC over REST; offsets are honoured.
    body = _test_body("2030-01-01T06:00:00", "2030-01-01T12:00:00+02:00")
    ok(await client.post("/v1/abtests", json=body), 201)
    test = ok(await client.get("/v1/abtests/t1"))["test"]
    assert (test["start"], test["end"]) == ("2030-01-01T06:00:00Z", "2030-01-01T10:00:00Z")

    past = _test_body("2029-12-31", "2030-01-03")
    past["test"]["name"] = "t2"  # type: ignore[index]
    fails(await client.post("/v1/abtests", json=past), 400, "ValidationError")
    fails(
        await client.post("/v1/abtests", json=_test_body("soon", "later")),
        422,
        "RequestValidationError",
    )
    fails(await client.post("/v1/abtests", json={"name": "t3"}), 422, "RequestValidationError")
    fails(
        await client.post("/v1/abtests", json=_test_body("2030-02-01", "2030-02-02", x=1)),
        422,
        "RequestValidationError",
    )
    partial = _test_body("2030-02-01", "2030-02-02")
    partial["test"]["name"] = "t4"  # type: ignore[index]
    partial["test"]["groups"][0]["proportion"] = 0.3  # type: ignore[index]
    fails(await client.post("/v1/abtests", json=partial), 422, "RequestValidationError")
    partial["test"]["groups"][1]["proportion"] = 0.7  # type: ignore[index]
    ok(await client.post("/v1/abtests", json=partial), 201)
    test = ok(await client.get("/v1/abtests/t4"))["test"]
    assert [g["proportion"] for g in test["groups"]] == [0.3, 0.7]
    unknown = _test_body("2030-03-01", "2030-03-02")
    unknown["test"]["name"] = "t5"  # type: ignore[index]
    unknown["test"]["groups"][0]["variants"] = {"f": "Z"}  # type: ignore[index]
    fails(await client.post("/v1/abtests", json=unknown), 404, "VariantNotFound")
    assert clock.now.isoformat().startswith("2030-01-01")


async def test_revision(client: httpx.AsyncClient) -> None:
    before = ok(await client.get("/v1/revision"))
    assert before["revision"] == before["snapshot_revision"]
    ok(await client.post("/v1/features/x"), 201)
    after = ok(await client.get("/v1/revision"))
    assert after == {
        "revision": before["revision"] + 1,
        "snapshot_revision": before["revision"] + 1,
    }


async def test_reads_follow_writes_at_once(client: httpx.AsyncClient) -> None:
    """After a write answers, the same process serves the new state (no polling delay)."""
    await seed_basics(client)
    for variant in ("B", "A", "B"):
        ok(await client.put(f"/v1/features/f/default_variant/{variant}"))
        assert ok(await client.get("/v1/subjects/5/flags")) == {"flags": {"f": variant}}


async def _bucket(client: httpx.AsyncClient, subject_id: int) -> int:
    return int(ok(await client.get(f"/v1/subjects/{subject_id}"))["bucket"])


async def _until_flags(client: httpx.AsyncClient, subject_id: int, flags: dict[str, str]) -> None:
    for _ in range(100):
        body = ok(await client.get(f"/v1/subjects/{subject_id}/flags"))
        if body == {"flags": flags}:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"subject {subject_id} never got {flags}; last {body}")


async def test_abtest_instants_at_the_edges_of_the_range(client: httpx.AsyncClient) -> None:
    """Issue 8 items 6 and 9: beyond the range is a 400 naming the field, never a 500; the
    last representable instant is a valid end that the server keeps serving."""
    await seed_basics(client)
    too_late = _test_body("2030-01-02", "9999-12-31T23:59:59-23:59")
    message = fails(await client.post("/v1/abtests", json=too_late), 400, "ValidationError")
    assert message.startswith("end ")
    too_early = _test_body("0001-01-01T00:30:00+01:00", "2030-01-03")
    message = fails(await client.post("/v1/abtests", json=too_early), 400, "ValidationError")
    assert message.startswith("start ")
    forever = _test_body("2030-01-02", "9999-12-31T23:59:59.999999Z")
    ok(await client.post("/v1/abtests", json=forever), 201)
    assert ok(await client.get("/v1/abtests/t1"))["test"]["end"] == "9999-12-31T23:59:59.999999Z"
    assert ok(await client.get("/v1/subjects/1/flags")) == {"flags": {"f": "A"}}
    ready = ok(await client.get("/readyz"))
    assert ready["revision"] == ok(await client.get("/v1/revision"))["revision"]


async def test_bulk_members_one_revision_all_or_nothing(client: httpx.AsyncClient) -> None:
    ok(await client.put("/v1/buckets", params={"amount": 2}))
    ok(await client.post("/v1/subjects", json=[{"id": i} for i in range(1, 6)]), 201)
    ok(await client.post("/v1/groups/beta"), 201)
    before = ok(await client.get("/v1/revision"))["revision"]
    added = ok(await client.post("/v1/groups/beta/subjects", json=[3, 1, 2]), 201)
    assert added == {"added": 3}
    assert ok(await client.get("/v1/revision"))["revision"] == before + 1
    assert ok(await client.get("/v1/groups/beta"))["subjects"] == [1, 2, 3]
    fails(await client.post("/v1/groups/beta/subjects", json=[4, 1]), 400, "SubjectAlreadyInGroup")
    fails(await client.post("/v1/groups/beta/subjects", json=[4, 99]), 404, "SubjectNotFound")
    fails(await client.post("/v1/groups/nope/subjects", json=[4]), 404, "GroupNotFound")
    fails(await client.post("/v1/groups/beta/subjects", json=[4, 4]), 400, "ValidationError")
    fails(await client.post("/v1/groups/beta/subjects", json=[]), 400, "ValidationError")
    fails(await client.post("/v1/groups/beta/subjects", json=["4"]), 422, "RequestValidationError")
    assert ok(await client.get("/v1/groups/beta"))["subjects"] == [1, 2, 3]  # none of those
    assert ok(await client.get("/v1/revision"))["revision"] == before + 1
