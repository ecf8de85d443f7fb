"""The resolution spec cases (tests/engine/cases/*.json) replayed through the REST API.

Each case's state is built with admin requests in the order its README prescribes (the
allocations must come out as the case states them); then, for each check, a read-only app
started over the same database with the clock at the check's instant must serve exactly the
expected flags, and SubjectNotFound for the listed unknown ids.
"""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from tests.engine.spec_cases import SpecCase, load_cases
from tests.fakes import FakeClock
from tests.http.conftest import MakeClient
from tests.http.helpers import fails, ok

CASES = load_cases()


@pytest.mark.parametrize("name", sorted(CASES))
async def test_spec_case(name: str, make_client: MakeClient, clock: FakeClock) -> None:
    case = CASES[name]
    starts = [test.start for test in case.state.abtests]
    if starts:
        clock.now = min(starts) - timedelta(days=1)  # tests are created before they start
    admin = await make_client()
    await _replay(admin, case)
    for check in case.checks:
        clock.now = check.at
        replica = await make_client(admin_mode=False)
        for subject_id, flags in check.flags.items():
            response = await replica.get(f"/v1/subjects/{subject_id}/flags")
            assert ok(response) == {"flags": flags}, f"{name} at {check.at}: {check.note}"
        for subject_id in check.not_found:
            fails(await replica.get(f"/v1/subjects/{subject_id}/flags"), 404, "SubjectNotFound")


# One short case per operation a spec case may hold.
async def _replay(client: httpx.AsyncClient, case: SpecCase) -> None:  # noqa: C901
    state = case.state
    created = ok(await client.put("/v1/buckets", params={"amount": len(state.buckets)}))
    bucket_of = dict(zip(created["bucket_ids"], state.buckets, strict=True))
    for feature in state.features:
        base = f"/v1/features/{feature.name}"
        ok(await client.post(base), 201)
        for variant in feature.variants:
            if variant == "__DISABLE__":
                ok(await client.post(f"{base}/disabling_variant"), 201)
            else:
                ok(await client.post(f"{base}/variants/{variant}"), 201)
        if feature.default is not None:
            ok(await client.put(f"{base}/default_variant/{feature.default}"))
    for subject in state.subjects:
        added = await client.post(f"/v1/subjects/{subject.id}", params={"weight": subject.weight})
        assert bucket_of[ok(added, 201)["bucket_id"]] == subject.bucket
    for group in state.groups:
        ok(await client.post(f"/v1/groups/{group.name}"), 201)
        for feature_name, variant in group.overrides.items():
            path = f"/v1/groups/{group.name}/overrides/{feature_name}"
            ok(await client.post(path, params={"variant": variant}))
    for subject in state.subjects:
        for group_name in subject.groups:
            ok(await client.post(f"/v1/groups/{group_name}/subjects/{subject.id}"))
    for rollout in state.rollouts:
        path = f"/v1/features/{rollout.feature}/rollout"
        ok(await client.post(path, params={"variant": rollout.variant}), 201)
        ok(await client.put(path, params={"proportion": rollout.proportion}))
        buckets = ok(await client.get(path))["buckets"]
        assert sorted(bucket_of[b] for b in buckets) == sorted(rollout.buckets)
    for test in state.abtests:
        groups = [
            {"name": g.name, "proportion": g.proportion, "variants": g.variants}
            for g in test.groups
        ]
        body = {
            "test": {
                "name": test.name,
                "start": test.start.isoformat(),
                "end": test.end.isoformat(),
                "groups": groups,
            }
        }
        ok(await client.post("/v1/abtests", json=body), 201)
        created_test = ok(await client.get(f"/v1/abtests/{test.name}"))["test"]
        for got, expected in zip(created_test["groups"], test.groups, strict=True):
            assert sorted(bucket_of[b] for b in got["buckets"]) == sorted(expected.buckets)
    for feature in state.features:
        if feature.killed:
            ok(await client.post(f"/v1/features/{feature.name}/kill"))
