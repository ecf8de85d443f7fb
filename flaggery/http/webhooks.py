"""Webhook subscriptions over REST: list, create, read, remove, replay from a revision.

A thin translation to AsyncFlaggery's webhook methods (flaggery.store.webhooks); secrets go in
and never come out. Creating a subscription writes no revision: it is configuration, and its
deliveries come from the admin process (flaggery.hooks.sending).
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from flaggery import errors as e
from flaggery.http.codec import Success
from flaggery.http.endpoint import Call, Operation
from flaggery.store.webhooks import WebhookRecord

__all__ = ["OPERATIONS"]

WEBHOOK = "/v1/webhooks/{name}"
_Filter = Annotated[str | None, Meta(description="Keep only writes touching this name.")]


class WebhookIn(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    url: Annotated[str, Meta(description="http:// or https:// URL the deliveries are POSTed to.")]
    secret: Annotated[
        str, Meta(description="16-500 characters: the HMAC-SHA256 key of Flaggery-Signature.")
    ]
    feature: _Filter = None
    group: _Filter = None
    test: _Filter = None
    operation: Annotated[
        str | None,
        Meta(
            description="Keep only this admin operation, such as kill_switch (revert and "
            "restore keep every revert and restore); another name is refused with 400."
        ),
    ] = None
    after: Annotated[
        int | None, Meta(description="Deliver the writes after this revision; default: now.")
    ] = None


class WebhookList(msgspec.Struct, frozen=True):
    webhooks: list[WebhookRecord]


class ReplayQuery(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    from_revision: Annotated[int, Meta(description="Deliver again from this revision on.")]


async def list_webhooks(call: Call[None, None]) -> WebhookList:
    return WebhookList(await call.store.webhooks())


async def add_webhook(call: Call[None, WebhookIn]) -> WebhookRecord:
    body = call.body
    return await call.store.add_webhook(
        call.path["name"],
        body.url,
        body.secret,
        feature=body.feature,
        group=body.group,
        test=body.test,
        operation=body.operation,
        after=body.after,
    )


async def get_webhook(call: Call[None, None]) -> WebhookRecord:
    return await call.store.get_webhook(call.path["name"])


async def remove_webhook(call: Call[None, None]) -> Success:
    await call.store.remove_webhook(call.path["name"])
    return Success()


async def replay_webhook(call: Call[ReplayQuery, None]) -> WebhookRecord:
    return await call.store.replay_webhook(call.path["name"], call.query.from_revision)


OPERATIONS = (
    Operation("GET", "/v1/webhooks", list_webhooks, WebhookList, "List webhook subscriptions",
              "webhooks", description="Without their secrets. failing: deliveries have failed "
              "for longer than FLAGGERY_WEBHOOK_FAILING_AFTER (still retried)."),
    Operation("POST", WEBHOOK, add_webhook, WebhookRecord, "Subscribe a URL to the writes",
              "webhooks", 201, body=WebhookIn, errors=(e.WebhookExists, e.ValidationError),
              description="Every later write the filter keeps is POSTed as JSON, in revision "
              "order, at least once, signed (docs/delivery.md). The URL's host must resolve to "
              "addresses the server may reach: never link-local or 169.254.169.254; loopback "
              "and private ranges only if FLAGGERY_WEBHOOK_ALLOW_LOOPBACK/_PRIVATE allow."),
    Operation("GET", WEBHOOK, get_webhook, WebhookRecord, "Get a webhook subscription",
              "webhooks", errors=(e.WebhookNotFound,)),
    Operation("DELETE", WEBHOOK, remove_webhook, Success, "Remove a webhook subscription",
              "webhooks", errors=(e.WebhookNotFound,)),
    Operation("POST", WEBHOOK + "/replay", replay_webhook, WebhookRecord,
              "Deliver again from a revision on", "webhooks", query=ReplayQuery,
              errors=(e.WebhookNotFound, e.ValidationError),
              description="Moves the subscription's cursor back: every kept write from "
              "from_revision on is delivered again, in order. Clears the failing state."),
)  # fmt: skip
