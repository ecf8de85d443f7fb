"""GET /v1/snapshot (issue 11, item 5): the whole state at one revision in the portable format,
which resolves every subject as the server does; reader role; read-only servers serve it."""

from __future__ import annotations

from flaggery.engine import build_snapshot
from flaggery.engine.state_codec import decode_state
from tests.fakes import FakeClock
from tests.http.conftest import MakeClient
from tests.http.helpers import fails, ok, seed_basics

TOKENS = "ops:admin:admin-secret grafana:reader:reader-secret"
READER = {"Authorization": "Bearer reader-secret"}


async def test_the_snapshot_resolves_like_the_server(
    make_client: MakeClient, clock: FakeClock
) -> None:
    client = await make_client()
    await seed_basics(client)
    ok(await client.post("/v1/groups/g"), 201)
    ok(await client.post("/v1/groups/g/subjects/3"))
    ok(await client.post("/v1/groups/g/overrides/f", params={"variant": "B"}))
    response = await client.get("/v1/snapshot")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.flaggery.snapshot"
    state = decode_state(response.content)
    head = ok(await client.get("/v1/revision"))["revision"]
    assert state.revision == head == int(response.headers["x-flaggery-revision"])
    snapshot = build_snapshot(state, clock.now)
    for subject in range(1, 9):
        served = ok(await client.get(f"/v1/subjects/{subject}/flags"))["flags"]
        assert dict(snapshot.variants(subject)) == served
    assert snapshot.variant(3, "f") == "B"


async def test_readers_only_and_served_read_only(make_client: MakeClient) -> None:
    client = await make_client(tokens=TOKENS, admin_mode=False)
    fails(await client.get("/v1/snapshot"), 401, "Unauthorized")
    response = await client.get("/v1/snapshot", headers=READER)
    assert response.status_code == 200 and decode_state(response.content).revision == 0
