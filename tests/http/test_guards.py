"""Guards (issue 22): POST /v1/guard/alertmanager takes the payload Alertmanager documents
(https://prometheus.io/docs/alerting/latest/configuration/#webhook_config, version 4) and
pauses or rolls back a release plan, or fires a kill switch; a resolved alert does nothing.
Authenticated by a token of the role ``guard``, which can do nothing else."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import httpx
import pytest

from flaggery.store.repository import AsyncFlaggery
from tests.http.conftest import MakeClient
from tests.http.test_ui import csrf_of
from tests.store.test_lifecycle import seed

GUARD = "guard0-5ecret-guard0-5ecret-guard0"
ADMIN = "admin0-5ecret-admin0-5ecret-admin0"
TOKENS = f"alertmanager:guard:{GUARD} boss:admin:{ADMIN}"
ROUTE = "/v1/guard/alertmanager"

# Alertmanager's documented webhook body, with one alert, as its webhook notifier sends it.
DOCUMENTED: dict[str, Any] = {
    "version": "4",
    "groupKey": '{}:{alertname="CheckoutErrors"}',
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "flaggery",
    "groupLabels": {"alertname": "CheckoutErrors"},
    "commonLabels": {"alertname": "CheckoutErrors", "flaggery_feature": "f"},
    "commonAnnotations": {"summary": "checkout error rate above 2%"},
    "externalURL": "http://alertmanager.example:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "CheckoutErrors", "flaggery_feature": "f"},
            "annotations": {"summary": "checkout error rate above 2%"},
            "startsAt": "2030-01-01T00:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example:9090/graph?g0.expr=...",
            "fingerprint": "c0ffee0123456789",
        }
    ],
}


def payload(status: str = "firing", **labels: str) -> dict[str, Any]:
    body = copy.deepcopy(DOCUMENTED)
    body["status"] = body["alerts"][0]["status"] = status
    body["alerts"][0]["labels"].update(labels)
    return body


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
async def guarded(make_client: MakeClient, store: AsyncFlaggery) -> httpx.AsyncClient:
    await seed(store)
    steps = [(0.1, timedelta(hours=1)), (0.5, timedelta(days=1)), (1.0, None)]
    await store.create_plan("f", "on", steps)
    await store.advance_due_plans()
    await store.skip_plan("f")  # at step 2 (50%), active
    return await make_client(tokens=TOKENS, guard_action="pause")


async def test_a_firing_alert_pauses_the_plan_by_the_guard_token(
    guarded: httpx.AsyncClient, store: AsyncFlaggery
) -> None:
    response = await guarded.post(ROUTE, json=DOCUMENTED, headers=bearer(GUARD))
    assert response.status_code == 200, response.text
    [outcome] = response.json()["alerts"]
    assert outcome == {
        "fingerprint": "c0ffee0123456789",
        "status": "firing",
        "outcome": "done",
        "feature": "f",
        "action": "pause",
    }
    plan = await store.get_plan("f")
    assert plan.status == "paused" and "CheckoutErrors" in plan.note
    last = (await store.changes(await store.revision() - 1, 1)).changes[-1]
    assert (last.actor, last.operation) == ("alertmanager", "pause_plan")
    revision = await store.revision()
    again = await guarded.post(ROUTE, json=DOCUMENTED, headers=bearer(GUARD))  # repeat_interval
    assert again.json()["alerts"][0]["outcome"] == "done"
    assert await store.revision() == revision  # nothing more written


async def test_a_resolved_alert_does_nothing(
    guarded: httpx.AsyncClient, store: AsyncFlaggery
) -> None:
    await guarded.post(ROUTE, json=DOCUMENTED, headers=bearer(GUARD))
    revision = await store.revision()
    response = await guarded.post(ROUTE, json=payload("resolved"), headers=bearer(GUARD))
    assert response.json()["alerts"][0]["outcome"] == "ignored"
    assert await store.revision() == revision
    assert (await store.get_plan("f")).status == "paused"  # a person resumes


async def test_the_action_label_rolls_back_or_kills(
    guarded: httpx.AsyncClient, store: AsyncFlaggery
) -> None:
    buckets_before = (await store.get_rollout("f")).buckets
    assert buckets_before
    body = payload(flaggery_action="rollback")
    assert (await guarded.post(ROUTE, json=body, headers=bearer(GUARD))).status_code == 200
    plan = await store.get_plan("f")
    assert (plan.status, plan.step) == ("paused", -1)
    assert (await store.get_rollout("f")).proportion == 0
    body = payload(flaggery_action="kill")
    response = await guarded.post(ROUTE, json=body, headers=bearer(GUARD))
    assert response.json()["alerts"][0]["outcome"] == "done"
    assert (await store.get_feature("f")).killed


async def test_the_setting_chooses_the_action_without_a_label(
    make_client: MakeClient, store: AsyncFlaggery
) -> None:
    await store.add_feature("f")
    client = await make_client(tokens=TOKENS, guard_action="kill")
    response = await client.post(ROUTE, json=DOCUMENTED, headers=bearer(GUARD))
    assert response.json()["alerts"][0]["action"] == "kill"
    assert (await store.get_feature("f")).killed


async def test_what_cannot_be_done_is_reported_per_alert(
    guarded: httpx.AsyncClient, store: AsyncFlaggery
) -> None:
    body = payload(flaggery_feature="nope")
    body["alerts"].append(payload(flaggery_action="explode")["alerts"][0])
    body["alerts"].append({"status": "firing", "labels": {"alertname": "Unrelated"}})
    response = await guarded.post(ROUTE, json=body, headers=bearer(GUARD))
    assert response.status_code == 200
    unknown, bad_action, unrelated = response.json()["alerts"]
    assert unknown["outcome"] == "refused" and unknown["error"].startswith("PlanNotFound")
    assert bad_action["outcome"] == "refused" and "pause, rollback, kill" in bad_action["error"]
    assert unrelated["outcome"] == "ignored"
    assert (await store.get_plan("f")).status == "active"


async def test_a_body_that_is_not_alertmanagers_is_refused(guarded: httpx.AsyncClient) -> None:
    response = await guarded.post(ROUTE, json={"alerts": "no"}, headers=bearer(GUARD))
    assert response.status_code == 422
    assert response.json()["exception"]["name"] == "RequestValidationError"


async def test_the_guard_token_can_do_nothing_else(guarded: httpx.AsyncClient) -> None:
    headers = bearer(GUARD)
    assert (await guarded.get("/v1/features", headers=headers)).status_code == 403
    assert (await guarded.post("/v1/features/g", headers=headers)).status_code == 403
    refused = await guarded.put("/v1/features/f/kill", headers=headers)
    assert refused.status_code in (403, 404, 405)
    assert (await guarded.get("/v1/webhooks", headers=headers)).status_code == 403
    csrf = csrf_of(await guarded.get("/ui/signin"))
    signin = await guarded.post("/ui/signin", data={"csrf": csrf, "token": GUARD})
    assert signin.status_code == 403 and "guard route only" in signin.text
    admin = await guarded.post(ROUTE, json=payload("resolved"), headers=bearer(ADMIN))
    assert admin.status_code == 200  # an admin token may call it too
    nobody = await guarded.post(ROUTE, json=DOCUMENTED)
    assert nobody.status_code == 401
