"""GET /v1/features/{f} says who gets each variant after precedence (the engine's count from
the snapshot, flaggery.engine.reach), not the rollout's proportion: during a live A/B test over
the rollout's feature, the test's groups take the rollout's subjects. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import httpx

from tests.fakes import FakeClock
from tests.http.helpers import ok, seed_basics


async def test_a_live_test_takes_the_rollout_and_an_override_takes_its_members(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await seed_basics(client)  # 4 buckets, subjects 1..8, f: A (default), B
    ok(await client.post("/v1/features/f/rollout", params={"variant": "B"}), 201)
    ok(await client.put("/v1/features/f/rollout", params={"proportion": 1.0}))
    before = ok(await client.get("/v1/features/f"))
    assert before["reach"] == [
        {
            "variant": "B",
            "source": "rollout",
            "subjects": 8,
            "subject_share": 1.0,
            "buckets": 4,
            "key_share": 1.0,
        }
    ]
    end = (clock.now + timedelta(days=1)).isoformat()
    groups = [
        {"name": "control", "proportion": 0.5, "variants": {"f": "A"}},
        {"name": "treatment", "proportion": 0.5, "variants": {"f": "B"}},
    ]
    test = {"test": {"name": "t", "end": end, "groups": groups}}
    ok(await client.post("/v1/abtests", json=test), 201)
    ok(await client.post("/v1/groups/vip"), 201)
    ok(await client.post("/v1/groups/vip/subjects/1"))
    ok(await client.post("/v1/groups/vip/overrides/f", params={"variant": "A"}))
    during = ok(await client.get("/v1/features/f"))
    sources = {(r["source"], r.get("test_group"), r.get("group")) for r in during["reach"]}
    assert ("rollout", None, None) not in sources  # nobody gets the rollout now
    assert sum(r["subjects"] for r in during["reach"]) == 8
    assert sum(r["buckets"] for r in during["reach"]) == 4
    override = next(r for r in during["reach"] if r["source"] == "override")
    assert (override["group"], override["subjects"], override["buckets"]) == ("vip", 1, 0)
    assert {r.get("test_group") for r in during["reach"] if r["source"] == "abtest"} == {
        "control",
        "treatment",
    }
    for reach in during["reach"]:
        assert reach["subject_share"] == reach["subjects"] / 8
        assert reach["key_share"] == reach["buckets"] / 4
    for subject in range(1, 9):  # the counts agree with what each subject is served
        why = ok(await client.get(f"/v1/subjects/{subject}/explain"))["features"]["f"]
        assert why["source"] == ("override" if subject == 1 else "abtest")
