"""Webhooks out (issue 22): delivered from the change log by the admin process to a real HTTP
receiver on loopback, at least once, in revision order, signed; retried with the jittered
backoff, marked failing after a bounded time, replayed on demand. The clock is the test's."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator

import pytest

from flaggery.errors import ValidationError, WebhookTargetRefused
from flaggery.hooks.sending import Deliverer
from flaggery.hooks.signing import SIGNATURE_HEADER, verify
from flaggery.store.repository import AsyncFlaggery
from flaggery.store.webhook_targets import TargetPolicy
from tests.fakes import FakeClock
from tests.hooks.receiver import Receiver, receiver

SECRET = "s3cret-s3cret-s3cret-s3cret"
LOOPBACK = TargetPolicy(allow_loopback=True)
FAILING_AFTER = 600.0


@pytest.fixture
async def target() -> AsyncIterator[Receiver]:
    async with receiver() as open_receiver:
        yield open_receiver


@pytest.fixture
async def hooks(store: AsyncFlaggery, clock: FakeClock) -> AsyncIterator[Deliverer]:
    store.webhook_policy = LOOPBACK
    deliverer = Deliverer(store.database, policy=LOOPBACK, failing_after=FAILING_AFTER, clock=clock)
    yield deliverer
    await deliverer.close()


def revisions(target: Receiver, accepted_only: bool = True) -> list[int]:
    requests = target.accepted if accepted_only else target.received
    return [json.loads(request.body)["revision"] for request in requests]


async def add_features(store: AsyncFlaggery, *names: str) -> list[int]:
    written = []
    for name in names:
        await store.add_feature(name)
        written.append(await store.revision())
    return written


async def test_a_receiver_that_fails_then_recovers_gets_everything_in_order(
    store: AsyncFlaggery, hooks: Deliverer, target: Receiver, clock: FakeClock
) -> None:
    await store.add_webhook("audit", target.url, SECRET)
    written = await add_features(store, "a", "b", "c")
    target.status = 503
    await hooks.run_round()
    assert revisions(target, accepted_only=False) == written[:1]  # stops at the first failure
    await hooks.run_round()  # waiting for its retry: nothing sent
    assert len(target.received) == 1
    failing = await store.get_webhook("audit")
    assert failing.delivered == written[0] - 1 and "HTTP 503" in (failing.last_error or "")
    assert not failing.failing
    written += await add_features(store, "d")
    target.status = 200
    clock.advance(seconds=2)  # past the first retry's wait (at most 1 s)
    await hooks.run_round()
    assert revisions(target) == written
    assert revisions(target, accepted_only=False) == [written[0], *written]
    healthy = await store.get_webhook("audit")
    assert healthy.delivered == written[-1] and healthy.failing_since is None
    await hooks.run_round()
    assert revisions(target) == written  # nothing twice once acknowledged


async def test_each_delivery_is_signed_json_keyed_by_its_revision(
    store: AsyncFlaggery, hooks: Deliverer, target: Receiver, clock: FakeClock
) -> None:
    await store.add_webhook("audit", target.url, SECRET)
    [revision] = await add_features(store, "checkout")
    await hooks.run_round()
    [request] = target.accepted
    body = json.loads(request.body)
    assert body["webhook"] == "audit" and body["revision"] == revision
    assert body["operation"] == "add_feature" and body["facts"][0]["name"] == "checkout"
    assert request.headers["idempotency-key"] == str(revision)
    assert request.headers["content-type"] == "application/json"
    header = request.headers[SIGNATURE_HEADER.lower()]
    now = int(clock().timestamp())
    assert verify(SECRET, header, request.body, now)
    assert not verify("another-secret-another", header, request.body, now)
    assert not verify(SECRET, header, request.body + b" ", now)
    assert not verify(SECRET, header, request.body, now + 301)  # too old: a replay


async def test_a_subscription_failing_past_the_bound_is_marked_and_still_retried(
    store: AsyncFlaggery, hooks: Deliverer, target: Receiver, clock: FakeClock
) -> None:
    await store.add_webhook("audit", target.url, SECRET)
    written = await add_features(store, "a")
    target.status = 500
    for _ in range(30):
        await hooks.run_round()
        clock.advance(seconds=61)  # past any wait: the backoff's cap is 60 s
        if (await store.get_webhook("audit")).failing:
            break
    record = await store.get_webhook("audit")
    assert record.failing and record.failing_since is not None
    assert (clock() - record.failing_since).total_seconds() >= FAILING_AFTER - 61
    assert hooks.failing == {"audit": False}  # as of the round's start
    target.status = 200
    await hooks.run_round()
    assert revisions(target) == written
    assert not (await store.get_webhook("audit")).failing


async def test_the_filter_keeps_only_matching_writes(
    store: AsyncFlaggery, hooks: Deliverer, target: Receiver
) -> None:
    await store.add_webhook("checkout", target.url, SECRET, feature="checkout")
    await store.add_feature("search")
    await store.add_feature("checkout")
    kept = await store.revision()
    await store.add_variant("A", "search")
    await store.kill_switch("checkout")
    killed = await store.revision()
    await hooks.run_round()
    assert revisions(target) == [kept, killed]
    assert (await store.get_webhook("checkout")).delivered == killed


async def test_an_operation_filter(
    store: AsyncFlaggery, hooks: Deliverer, target: Receiver
) -> None:
    await store.add_webhook("kills", target.url, SECRET, operation="kill_switch")
    await add_features(store, "a", "b")
    await store.kill_switch("b")
    killed = await store.revision()
    await add_features(store, "c")
    await hooks.run_round()
    assert revisions(target) == [killed]
    assert (await store.get_webhook("kills")).delivered == await store.revision()


async def test_replay_from_a_revision(
    store: AsyncFlaggery, hooks: Deliverer, target: Receiver
) -> None:
    await store.add_webhook("audit", target.url, SECRET, after=0)
    written = await add_features(store, "a", "b", "c")
    await hooks.run_round()
    assert revisions(target) == written
    replayed = await store.replay_webhook("audit", written[1])
    assert replayed.delivered == written[0]
    await hooks.run_round()
    assert revisions(target) == [*written, *written[1:]]


async def test_a_redirect_is_not_followed(
    store: AsyncFlaggery, hooks: Deliverer, target: Receiver
) -> None:
    await store.add_webhook("audit", target.url, SECRET)
    await add_features(store, "a")
    target.status, target.extra_headers = 302, "Location: http://169.254.169.254/\r\n"
    await hooks.run_round()
    assert len(target.received) == 1
    assert "HTTP 302" in ((await store.get_webhook("audit")).last_error or "")


async def test_the_address_is_checked_again_at_delivery(
    store: AsyncFlaggery, target: Receiver, clock: FakeClock
) -> None:
    """Created while loopback was allowed, delivered by a deliverer whose policy refuses it
    (the same as a name that resolves elsewhere later): nothing is sent."""
    store.webhook_policy = LOOPBACK
    await store.add_webhook("audit", target.url, SECRET)
    await add_features(store, "a")
    strict = Deliverer(store.database, policy=TargetPolicy(), failing_after=60, clock=clock)
    try:
        await strict.run_round()
    finally:
        await strict.close()
    assert target.received == []
    assert "loopback" in ((await store.get_webhook("audit")).last_error or "")


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9/hook", "http://10.1.2.3/hook", "http://169.254.169.254/latest"],
)
async def test_creation_refuses_addresses_the_policy_refuses(
    store: AsyncFlaggery, url: str
) -> None:
    with pytest.raises(WebhookTargetRefused):
        await store.add_webhook("audit", url, SECRET)
    assert await store.webhooks() == []


async def test_the_lease_lets_one_admin_process_deliver(
    store: AsyncFlaggery, hooks: Deliverer, target: Receiver, clock: FakeClock
) -> None:
    await store.add_webhook("audit", target.url, SECRET)
    written = await add_features(store, "a")
    other = Deliverer(store.database, policy=LOOPBACK, failing_after=60, clock=clock)
    try:
        await hooks.run_round()
        await add_features(store, "b")
        await other.run_round()  # the lease is the first process's for 60 s
        assert revisions(target) == written
        clock.advance(seconds=61)
        await other.run_round()
    finally:
        await other.close()
    assert revisions(target) == [*written, written[0] + 1]


def test_the_sync_facade_manages_subscriptions(db_url: str, target: Receiver) -> None:
    """Flaggery (sync) has the webhook methods, with the async ones' behaviour."""
    from flaggery.core import Flaggery

    with Flaggery.from_db_url(db_url, webhook_policy=LOOPBACK) as flaggery:
        created = flaggery.add_webhook("audit", target.url, SECRET, test="exp")
        assert created.test == "exp" and flaggery.webhooks() == [created]
        assert flaggery.replay_webhook("audit", 1).delivered == 0
        assert flaggery.get_webhook("audit").delivered == 0
        flaggery.remove_webhook("audit")
        assert flaggery.webhooks() == []


async def test_the_request_goes_to_the_checked_address_with_the_url_s_host(
    store: AsyncFlaggery, hooks: Deliverer, target: Receiver
) -> None:
    """The deliverer connects to the address it checked (no second resolution: DNS
    rebinding) and still names the URL's host in the Host header."""
    first = socket.getaddrinfo("localhost", target.port, type=socket.SOCK_STREAM)[0][4][0]
    if first != "127.0.0.1":
        pytest.skip(f"localhost resolves to {first} first; the receiver listens on 127.0.0.1")
    await store.add_webhook("audit", f"http://localhost:{target.port}/hook", SECRET)
    written = await add_features(store, "a")
    await hooks.run_round()
    assert revisions(target) == written
    assert target.accepted[0].headers["host"] == f"localhost:{target.port}"


async def test_revisions_pruned_before_delivery_are_skipped_and_the_rest_delivered(
    store: AsyncFlaggery, hooks: Deliverer, target: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    """Retention is the one way to lose a revision: a pruned one cannot be sent, so the
    deliverer logs it and goes on with what the log still holds, in order."""
    from flaggery.store.retention import Retention, prune_change_log

    await store.add_webhook("audit", target.url, SECRET)
    written = await add_features(store, "a", "b", "c", "d")
    assert await prune_change_log(store.database, Retention(revisions=2)) > 0
    await hooks.run_round()
    assert revisions(target) == written[-2:]
    assert "were pruned" in caplog.text
    assert (await store.get_webhook("audit")).delivered == written[-1]


async def test_a_revert_filter_keeps_every_revert(
    store: AsyncFlaggery, hooks: Deliverer, target: Receiver
) -> None:
    await store.add_webhook("reverts", target.url, SECRET, operation="revert")
    await store.add_feature("a")
    await store.add_variant("A", "a", make_default=True)
    await store.add_variant("B", "a")
    await store.set_default_feature_variant("a", "B")
    await store.revert(await store.revision())
    reverted = await store.revision()
    await hooks.run_round()
    assert revisions(target) == [reverted]  # recorded as "revert <revision>"


async def test_an_operation_no_write_records_is_refused(store: AsyncFlaggery) -> None:
    for operation in ("kil_switch", "revert 3", "", "x" * 65, "KILL_SWITCH"):
        with pytest.raises(ValidationError, match="kill_switch"):
            await store.add_webhook("h", "http://127.0.0.1:9/", SECRET, operation=operation)
    assert await store.webhooks() == []


async def test_a_filtered_subscription_finds_its_write_behind_many_others(
    store: AsyncFlaggery, hooks: Deliverer, target: Receiver
) -> None:
    await store.add_webhook("checkout", target.url, SECRET, feature="checkout")
    await add_features(store, *(f"other-{number}" for number in range(250)))
    await store.add_feature("checkout")
    kept = await store.revision()
    await add_features(store, "after")
    await hooks.run_round()
    assert revisions(target) == [kept]
    assert (await store.get_webhook("checkout")).delivered == await store.revision()
